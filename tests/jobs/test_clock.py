"""A node whose clock is off: the times it writes follow the database's clock (jobs/clock.py).

time_machine sets the node's clock; Postgres keeps the real one, as a second machine would.
"""

from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import AlertHistory
from jobs import clock
from jobs.manager import job_manager
from jobs.models import Job, JobRetryHistory, JobStatus
from jobs.tasks import run_job
from monitoring.health import health_service
from monitoring.models import JobExecutionLog
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def database_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


@pytest.fixture
def clock_from_database(settings):
    settings.JOBS = {**settings.JOBS, "CLOCK_FROM_DATABASE": True}
    clock.forget()
    yield
    clock.forget()


def test_a_node_two_minutes_fast_writes_the_databases_time(
    postgres_only, clock_from_database, django_capture_on_commit_callbacks, caplog
):
    """Drill: a worker 2 minutes fast wrote attempts that ended before they started, and jobs
    whose duration was -51 s."""
    before = database_now()
    with time_machine.travel(before + timedelta(minutes=2)):  # the node's clock runs on, 2 minutes fast
        job = job_manager.submit_job("test.progress", {"reports": [50]})
        with django_capture_on_commit_callbacks(execute=True):
            run_job(str(job.id), 1)
    after = database_now()

    job.refresh_from_db()
    attempt = JobRetryHistory.objects.get(job=job)
    written = {
        # heartbeat_at is the database's own (now()): the others now agree with it.
        "job": [
            job.created_at,
            job.queued_at,
            job.started_at,
            job.attempt_started_at,
            job.heartbeat_at,
            job.finished_at,
        ],
        "attempt": [attempt.started_at, attempt.completed_at],
        "events": list(
            JobExecutionLog.objects.filter(job=job).order_by("timestamp").values_list("timestamp", flat=True)
        ),
    }
    assert job.status == JobStatus.COMPLETED
    slack = timedelta(seconds=1)
    assert {
        name: [t for t in times if not before - slack <= t <= after + slack] for name, times in written.items()
    } == {
        "job": [],
        "attempt": [],
        "events": [],
    }
    assert job.started_at <= job.finished_at
    assert "this node's clock is 120." in caplog.text and "s ahead of the database's" in caplog.text


def test_a_node_within_a_second_of_the_database_writes_its_own_time(postgres_only, clock_from_database, caplog):
    with time_machine.travel(database_now() + timedelta(milliseconds=300), tick=False):
        assert clock.now() == timezone.now()

    assert "clock" not in caplog.text


def test_a_database_that_does_not_answer_leaves_the_nodes_time_and_stops_nothing(postgres_only, clock_from_database):
    with (
        time_machine.travel(database_now() + timedelta(minutes=2), tick=False),
        mock.patch.object(connection, "cursor", side_effect=OperationalError("the database is down")),
    ):
        assert clock.now() == timezone.now()


def test_the_database_is_read_once_a_minute_not_at_every_time_written(postgres_only, clock_from_database):
    with mock.patch.object(clock.time, "monotonic", return_value=1000.0):
        clock.now()
        with mock.patch.object(connection, "cursor", side_effect=AssertionError("read again")):
            clock.now()  # within the minute: the last measure holds
    with (
        mock.patch.object(clock.time, "monotonic", return_value=1000.0 + clock.REMEASURE_EVERY_S),
        CaptureQueriesContext(connection) as queries,
    ):
        clock.now()
    assert [q["sql"] for q in queries if "clock_timestamp" in q["sql"]] == [clock.DATABASE_TIME]


def test_a_read_that_fails_inside_the_callers_transaction_leaves_that_transaction_usable(
    postgres_only, clock_from_database, monkeypatch
):
    """The clock is read where a time is needed, often inside a job's transaction (an outcome, a
    claim): a failed read there aborted the whole transaction on Postgres, the job's rows with it."""
    monkeypatch.setattr(clock, "DATABASE_TIME", "SELECT clock_timestamp(")  # refused by the server
    with transaction.atomic():
        job = JobFactory()
        clock.now()

        job.refresh_from_db()  # "current transaction is aborted" without the savepoint
    assert Job.objects.filter(id=job.id).exists()


def test_sqlite_is_on_the_node_itself_and_never_asked(clock_from_database, django_assert_num_queries):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")

    with django_assert_num_queries(0):
        clock.now()


def test_the_health_checks_read_the_clock_of_the_node_running_them(postgres_only, clock_from_database, settings):
    """The correction keeps the data right; the health page and an alert say which node's clock to fix."""
    settings.WORKER_HOSTNAME = "node-2"
    with time_machine.travel(database_now() + timedelta(minutes=2)):
        skewed = health_service.run_health_checks_sync()
    with time_machine.travel(database_now() + timedelta(milliseconds=200)):
        fine = health_service.check_node_clock_sync()

    (reading,) = [c for c in skewed["components"] if c["metric_name"] == "clock.offset_s"]
    assert (reading["metric_type"], reading["status"], round(reading["metric_value"])) == ("resource", "warning", 120)
    assert round(reading["details"]["offset_s"]) == -120  # the node runs fast
    message = reading["details"]["message"]
    assert message.startswith("the clock of node-2 is 120.") and message.endswith(
        " s ahead of the database's: the times it writes are corrected by as much; fix its NTP"
    )
    (alert,) = AlertHistory.objects.filter(title__contains="clock.offset_s")
    assert alert.title == "Resource utilization resource/clock.offset_s on node-2 is warning"
    (reading,) = [c for c in fine["components"] if c["metric_name"] == "clock.offset_s"]
    assert (reading["status"], reading["details"]["message"]) == (
        "healthy",
        "the clock of node-2 agrees with the database's (within 1 s)",
    )
