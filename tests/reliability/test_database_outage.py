"""The database unreachable for a few seconds while jobs run on two `qcluster` nodes and a web
server answers the API. Postgres only: the fault is a database server refusing and dropping
connections, which SQLite (a file opened in each process) has no equivalent of.
"""

import time
from collections import Counter

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from jobs.manager import job_manager
from jobs.models import Job, JobRetryHistory, JobStatus
from monitoring.models import EventType, JobExecutionLog
from tests.conftest import wait_for
from tests.reliability.faults import database_unreachable
from tests.reliability.ledger import Ledger

pytestmark = [pytest.mark.reliability, pytest.mark.worker, pytest.mark.postgres]

OUTAGE_SECONDS = 4
STEPS = 40


@pytest.fixture
def database_server(db):
    if connection.vendor != "postgresql":
        pytest.skip(
            "the fault is a database server refusing and dropping connections, which SQLite (a file) has no "
            "equivalent of: set DATABASE_URL=postgres://… to run it"
        )


def running(job_ids) -> list[Job]:
    return list(Job.objects.filter(id__in=job_ids, status=JobStatus.RUNNING, progress__gt=0))


def clusters_reporting_since(moment) -> int:
    """django-q2 clusters whose sentinel saved its status (what the health check reads) after `moment`."""
    from django_q.status import Stat

    import jobs.queue

    return sum(1 for stat in Stat.get_all(broker=jobs.queue.shared_broker()) if stat.timestamp > moment)


def progress_events(jobs) -> dict:
    """job id -> its number of progress events (jobs of one attempt: a progress event carries the
    executor's own details, not the attempt's number)."""
    rows = JobExecutionLog.objects.filter(job__in=jobs, event_type=EventType.PROGRESS).values_list("job_id", flat=True)
    return dict(Counter(str(job_id) for job_id in rows))


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_jobs_workers_and_the_web_app_come_through_a_database_outage(
    database_server, cluster_nodes, web_server, run_log, alice, bearer, figures, broker
):
    nodes = cluster_nodes(2, workers=2, broker=broker)
    api = httpx.Client(base_url=web_server.url, headers=bearer(alice), timeout=10)
    assert api.get("/api/monitoring/jobs").status_code == 200
    session = Client()
    session.force_login(alice)
    dashboard = httpx.Client(base_url=web_server.url, cookies={"sessionid": session.cookies["sessionid"].value})
    assert dashboard.get("/jobs/").status_code == 200
    # Two jobs that read the database themselves, and ten whose code never does. Each node's
    # pusher prefetches up to 7 tasks and runs the first ones it takes: the readers, submitted
    # first, are among the four that run when the outage begins; others wait in the nodes' queues.
    readers = [job_manager.submit_job("reliability.db_reader", {"seconds": 6}) for _ in range(2)]
    steppers = [job_manager.submit_job("reliability.steps", {"steps": STEPS, "seconds": 0.1}) for _ in range(10)]
    first_wave = [job.id for job in readers + steppers]
    wait_for(lambda: len(running(first_wave)) == 4, timeout=30, message="four jobs to run")
    assert {job.id for job in readers} <= {job.id for job in running(first_wave)}

    went_at = timezone.now()
    with database_unreachable() as terminated:
        assert terminated >= 4 + 2  # at least the workers running jobs, and each node's pusher
        during = api.get("/api/monitoring/jobs")
        page_during = dashboard.get("/jobs/")
        time.sleep(OUTAGE_SECONDS)  # the outage itself: the fault lasts this long
    back_at = timezone.now()

    # The web app answered 503 (the API with a message) during the outage, and reconnects by itself.
    assert during.status_code == 503
    assert during.json()["detail"] == "database unavailable; try again shortly"
    assert during.headers["Retry-After"] == "5"
    assert (page_during.status_code, page_during.headers["Retry-After"]) == (503, "5")
    wait_for(lambda: api.get("/api/monitoring/jobs").status_code == 200, message="the web app to answer again")
    assert dashboard.get("/jobs/").status_code == 200
    assert web_server.alive()
    # Both nodes' sentinels report their status again (the health check's "workers alive").
    wait_for(lambda: clusters_reporting_since(back_at) == 2, timeout=5, message="both nodes to report again")
    # Jobs submitted after the outage run on the same nodes (their processes reconnected).
    second_wave = [job_manager.submit_job("reliability.steps", {"steps": 5}) for _ in range(4)]
    wait_for(
        lambda: not Job.objects.exclude(status=JobStatus.COMPLETED).exists(),
        timeout=90,
        message="every job to complete",
    )
    assert all(node.alive() for node in nodes)

    ledger = Ledger.read(run_log.runs())
    assert ledger.problems() == []
    # The jobs whose own database access failed were retried as transient, and completed.
    for reader in readers:
        first = JobRetryHistory.objects.get(job=reader, attempt_number=1)
        assert first.status == "failed"
        error = JobExecutionLog.objects.get(job=reader, event_type=EventType.ERROR)
        assert (error.error_details["type"], error.error_details["error_class"]) == (
            "django.db.utils.OperationalError",
            "transient",
        ), error.error_details["traceback"]
        assert Job.objects.get(id=reader.id).attempts == 2
    # The others were never interrupted: one attempt, and every one of their progress events is
    # there, those reported during the outage included (kept by the worker, written after).
    assert {str(job.id): job.attempts for job in Job.objects.filter(id__in=[s.id for s in steppers])} == {
        str(stepper.id): 1 for stepper in steppers
    }, "a job was taken back from a live worker"
    assert progress_events(steppers) == {str(stepper.id): STEPS for stepper in steppers}
    assert progress_events(second_wave) == {str(job.id): 5 for job in second_wave}
    # Events that happened during the outage and were written after it: kept by the workers.
    kept = JobExecutionLog.objects.filter(timestamp__gt=went_at, timestamp__lt=back_at, created_at__gte=back_at)
    assert kept.filter(event_type=EventType.PROGRESS).exists()
    assert kept.filter(event_type=EventType.ERROR).count() == len(readers)
    figures(
        f"{broker} broker: {terminated} connections cut, database refused connections for {OUTAGE_SECONDS}s; "
        f"{kept.count()} events of that time kept by the workers and written after "
        f"({kept.filter(event_type=EventType.PROGRESS).count()} progress, {len(readers)} errors); "
        f"{len(ledger.jobs)} jobs, {ledger.attempts} attempts, {ledger.event_rows} events reconciled"
    )
