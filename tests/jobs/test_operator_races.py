"""Operators (dashboard, API, admin, scripts) and workers acting on the same job at the same
moment (Postgres, one connection per thread, a barrier lining them up). Each race runs many
times: whatever the interleaving, no attempt runs twice or is lost, every answer says what
happened, and the timeline and retry history hold one record per attempt."""

import re

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone
from django_q.models import OrmQ

import tests.jobs.executors  # noqa: F401  (registers the test job types)
from jobs.manager import JobStateConflict, job_manager
from jobs.models import Job, JobRetryHistory, JobStatus, RetryStatus
from monitoring.models import EventType
from tests.concurrency import at_once
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 25


def conflicts(outcomes) -> int:
    return sum(1 for kind, value in outcomes if kind == "error" and isinstance(value, JobStateConflict))


def unexpected(outcomes) -> list:
    return [value for kind, value in outcomes if kind == "error" and not isinstance(value, JobStateConflict)]


def events(job, event_type) -> list[dict]:
    return list(job.logs.filter(event_type=event_type).values_list("details", flat=True))


def test_operators_retrying_one_failed_job_at_once_queue_one_attempt():
    for _ in range(ROUNDS):
        job = JobFactory(failed=True, job_type="test.echo", attempts=1, max_attempts=1)
        outcomes = at_once(*[lambda: job_manager.retry_job_sync(job.id, by="ops")] * 4)

        assert unexpected(outcomes) == []
        assert (outcomes.count(("ok", True)), conflicts(outcomes)) == (1, 3)
        job.refresh_from_db()
        assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
        assert [e["attempt"] for e in events(job, EventType.RETRY)] == [2]
        assert OrmQ.objects.count() == 1
        OrmQ.objects.all().delete()


def test_retries_through_the_api_at_once_answer_one_200_and_409s_that_say_why(alice):
    clients = []
    for _ in range(4):
        client = Client()
        client.force_login(alice)
        clients.append(client)
    for _ in range(ROUNDS):
        job = JobFactory(failed=True, job_type="test.echo", attempts=2, max_attempts=2)
        outcomes = at_once(*[lambda c=c: c.post(f"/api/jobs/{job.id}/retry?attempt=3") for c in clients])

        statuses = sorted(response.status_code for _, response in outcomes)
        assert statuses == [200, 409, 409, 409], [r.content for _, r in outcomes]
        for _, response in outcomes:
            if response.status_code == 409:
                # Read after the winner ("is queued: only failed…"), or lost its conditional UPDATE
                # to it ("it is queued now (retried by another request?)"): the truth either way.
                assert " is queued" in response.json()["detail"], response.json()
        job.refresh_from_db()
        assert (job.status, job.attempts) == (JobStatus.QUEUED, 2)
        assert [e["attempt"] for e in events(job, EventType.RETRY)] == [3]


def test_retry_against_cancel_of_a_job_waiting_to_retry_leaves_one_consistent_story():
    """Whichever comes first, the job ends as the last action that took effect left it, and its
    timeline says so: cancelled (the retry a 409, or the attempt it queued cancelled), or queued
    again by a retry that came after the cancel. A task queued and then cancelled runs nothing."""
    for _ in range(ROUNDS):
        job = JobFactory(status=JobStatus.RETRYING, job_type="test.echo", attempts=1)
        retried, cancelled = at_once(
            lambda: job_manager.retry_job_sync(job.id, by="alice"),
            lambda: job_manager.cancel_job_sync(job.id, by="bob"),
        )
        assert cancelled == ("ok", True)
        assert retried == ("ok", True) or isinstance(retried[1], JobStateConflict), retried
        job.refresh_from_db()
        timeline = list(job.logs.order_by("timestamp", "id").values_list("event_type", flat=True))
        if retried[0] == "error":
            assert (job.status, timeline) == (JobStatus.CANCELLED, [EventType.CANCELLED])
        elif timeline == [EventType.RETRY, EventType.CANCELLED]:
            assert job.status == JobStatus.CANCELLED
            assert job_manager.execute_job_sync(job.id, 2)["ran"] is False
        else:
            assert (job.status, timeline) == (JobStatus.QUEUED, [EventType.CANCELLED, EventType.RETRY])
        assert job.attempts == 1


def test_cancel_against_the_workers_claim_never_leaves_an_attempt_running(fast_jobs):
    for _ in range(ROUNDS):
        job = JobFactory(job_type="test.until_cancelled", attempts=0)
        ran, cancelled = at_once(
            lambda: job_manager.execute_job_sync(job.id, 1),
            lambda: job_manager.cancel_job_sync(job.id, by="bob"),
        )
        assert ran[0] == "ok" and cancelled == ("ok", True)
        job.refresh_from_db()
        assert job.status == JobStatus.CANCELLED and job.cancel_requested_at is not None
        history = list(JobRetryHistory.objects.filter(job=job).values_list("attempt_number", "status"))
        if ran[1]["ran"]:
            assert (job.attempts, history) == (1, [(1, RetryStatus.CANCELLED)])
        else:
            assert (job.attempts, history) == (0, [])


def retry_as_soon_as_it_may(job_id, attempt):
    """An operator clicking Retry over and over while the attempt runs: refused while the job is
    queued or running, until the worker's outcome is committed."""
    for _ in range(5_000):
        try:
            return job_manager.retry_job_sync(job_id, attempt, by="alice")
        except JobStateConflict as e:
            if " is queued" not in str(e) and " is running" not in str(e):
                raise
    raise AssertionError("the attempt never finished")


@pytest.mark.parametrize("kind, then", [("data", JobStatus.FAILED), ("transient", JobStatus.RETRYING)])
def test_a_retry_landing_as_the_worker_records_the_attempts_failure_queues_the_next_attempt_once(kind, then):
    for _ in range(ROUNDS):
        job = JobFactory(job_type="test.raise", parameters={"kind": kind}, attempts=0, max_attempts=2)
        ran, retried = at_once(
            lambda: job_manager.execute_job_sync(job.id, 1),
            lambda: retry_as_soon_as_it_may(job.id, 2),
        )
        assert (ran, retried) == (("ok", {"job_id": str(job.id), "attempt": 1, "ran": True}), ("ok", True))
        job.refresh_from_db()
        assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
        history = list(JobRetryHistory.objects.filter(job=job).values_list("attempt_number", "status"))
        assert history == [(1, RetryStatus.FAILED)]
        assert list(job.logs.filter(event_type=EventType.ERROR).values_list("status", flat=True)) == [then]
        assert [e["attempt"] for e in events(job, EventType.RETRY)] == [2]
        # The retry's task runs attempt 2; a second delivery of it runs nothing.
        assert job_manager.execute_job_sync(job.id, 2)["ran"] is True
        assert job_manager.execute_job_sync(job.id, 2)["ran"] is False
        history = list(JobRetryHistory.objects.filter(job=job).values_list("attempt_number", flat=True))
        assert history == [1, 2]


def test_a_manual_retry_against_the_pushers_dispatch_of_the_same_due_retry_queues_it_once():
    from datetime import timedelta

    from django.utils import timezone

    for _ in range(ROUNDS):
        due = timezone.now() - timedelta(seconds=1)
        job = JobFactory(
            status=JobStatus.RETRYING, job_type="test.echo", attempts=1, next_attempt_at=due, retry_delay=1.0
        )
        retried, dispatched = at_once(
            lambda: job_manager.retry_job_sync(job.id, by="alice"),
            lambda: job_manager.dispatch_due_retries(),
        )
        assert retried == ("ok", True) or isinstance(retried[1], JobStateConflict), retried
        assert (retried[0] == "ok") + dispatched[1] == 1
        job.refresh_from_db()
        assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
        assert [e["attempt"] for e in events(job, EventType.RETRY)] == [2]


def test_retry_these_failed_jobs_while_an_operator_retries_some_of_them_one_by_one(alice):
    """The dashboard's bulk retry and single retries (the API) of the same jobs: each job gets one
    new attempt, and the bulk retry's notice counts what it did and those taken from under it."""
    dashboard, api = Client(), Client()
    dashboard.force_login(alice)
    api.force_login(alice)
    filters = {"view": "finished", "status": "failed", "job_type": "test.echo", "window": "24h"}
    for _ in range(ROUNDS // 2):
        Job.objects.all().delete()
        jobs = [JobFactory(failed=True, job_type="test.echo", attempts=1, max_attempts=1) for _ in range(6)]

        def retry_some():
            return [api.post(f"/api/jobs/{job.id}/retry?attempt=2").status_code for job in jobs[::2]]

        bulk, single = at_once(
            lambda: dashboard.post("/jobs/retry/", filters, headers={"HX-Request": "true", "HX-Target": "job-list"}),
            retry_some,
        )
        assert bulk[1].status_code == 200 and sorted(set(single[1]) | {200, 409}) == [200, 409], single
        single_won = single[1].count(200)
        page = bulk[1].content.decode()
        assert f"Queued again {6 - single_won} failed job" in page
        left = re.search(r"(\d+) had changed since", page)
        assert int(left[1]) <= single_won if left else True
        for job in jobs:
            job.refresh_from_db()
            assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
            assert [e["attempt"] for e in events(job, EventType.RETRY)] == [2]


def test_retry_from_the_dashboard_the_api_and_a_script_at_once_queues_one_attempt_and_each_says_so(alice):
    """Three operators on one failed job (admin's action calls the same service as the script):
    one retry queued; the dashboard's loser is a 409 on the job's page, the API's a 409, the
    script's a JobStateConflict. (Only status codes and bodies are read from the responses: the
    test client's captured templates and context are not thread-safe.)"""
    dashboard, api = Client(), Client()
    for client in (dashboard, api):
        client.force_login(alice)
    for _ in range(ROUNDS):
        job = JobFactory(failed=True, job_type="test.echo", attempts=1, max_attempts=1)
        from_dashboard, from_api, from_script = at_once(
            lambda: dashboard.post(f"/jobs/{job.id}/retry/", {"attempt": "2"}, headers={"HX-Request": "true"}),
            lambda: api.post(f"/api/jobs/{job.id}/retry?attempt=2"),
            lambda: job_manager.retry_job_sync(job.id, 2, by="script"),
        )
        assert unexpected([from_script]) == []
        codes = [from_dashboard[1].status_code, from_api[1].status_code, 200 if from_script[0] == "ok" else 409]
        assert sorted(codes) == [200, 409, 409], codes
        page = from_dashboard[1].content.decode()
        if codes[0] == 200:
            assert "Retry queued: a new attempt will run." in page
        else:
            assert " is queued" in page
        job.refresh_from_db()
        assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
        assert [e["attempt"] for e in events(job, EventType.RETRY)] == [2]


def test_cancel_while_the_worker_completes_the_attempt_leaves_it_finished_once():
    for _ in range(ROUNDS):
        job = JobFactory(job_type="test.progress", parameters={"reports": [50]}, attempts=0)
        ran, cancelled = at_once(
            lambda: job_manager.execute_job_sync(job.id, 1),
            lambda: job_manager.cancel_job_sync(job.id, by="bob"),
        )
        assert ran[0] == "ok" and cancelled[0] in ("ok", "error"), (ran, cancelled)
        if cancelled[0] == "error":  # came after the completion
            assert isinstance(cancelled[1], JobStateConflict) and "is completed" in str(cancelled[1])
        job.refresh_from_db()
        assert job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED)
        history = list(JobRetryHistory.objects.filter(job=job).values_list("attempt_number", "status"))
        finished = [e for e in job.logs.values_list("event_type", flat=True) if e in ("completed", "cancelled")]
        if ran[1]["ran"]:
            expected = RetryStatus.SUCCESS if job.status == JobStatus.COMPLETED else RetryStatus.CANCELLED
            assert (job.attempts, history, finished) == (1, [(1, expected)], [job.status])
        else:
            assert (job.status, job.attempts, history, finished) == (JobStatus.CANCELLED, 0, [], ["cancelled"])


def waiting_on_a_lock(thread) -> bool:
    """Whether another connection's statement waits for a row lock (Postgres), or `thread` is
    done without ever waiting: polled until one is true, never a fixed wait."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0 or not thread.is_alive()


def test_a_cancel_arriving_while_the_worker_records_a_retryable_failure_waits_and_wins(postgres_only, monkeypatch):
    """The worker has read "no cancel requested" for its failed attempt and is about to schedule
    the retry; bob's cancel lands right then. It must not be lost between the two: it waits for
    the row the worker locked, then finds the job waiting to retry and cancels that, so
    attempt 2 never runs."""
    import threading

    from jobs.errors import TransientJobError
    from jobs.manager import EnhancedJobManager

    job = JobFactory(running=True, job_type="test.echo", attempts=1, max_attempts=3)
    JobRetryHistory.objects.create(job=job, attempt_number=1, status=RetryStatus.RUNNING)
    read_no_cancel, go_on = threading.Event(), threading.Event()
    real_cancel_requested = EnhancedJobManager._cancel_requested

    def cancel_requested_then_pause(self, job_id, attempt):
        requested = real_cancel_requested(self, job_id, attempt)
        read_no_cancel.set()
        assert go_on.wait(10)
        return requested

    monkeypatch.setattr(EnhancedJobManager, "_cancel_requested", cancel_requested_then_pause)
    outcomes = {}

    def record_failure():
        error = TransientJobError("service unavailable")
        job_manager._finish_failed(job, 1, error, now=timezone.now(), execution_time_ms=5)

    def cancel():
        assert read_no_cancel.wait(10)
        outcomes["cancel"] = job_manager.cancel_job_sync(job.id, by="bob")

    threads = [threading.Thread(target=in_own_connection(f)) for f in (record_failure, cancel)]
    for thread in threads:
        thread.start()
    while not waiting_on_a_lock(threads[1]):
        threading.Event().wait(0.01)  # polling the database for the lock wait, not timing
    go_on.set()
    for thread in threads:
        thread.join(10)

    assert outcomes == {"cancel": True}
    job.refresh_from_db()
    assert (job.status, job.attempts, job.next_attempt_at) == (JobStatus.CANCELLED, 1, None)
    assert list(job.logs.order_by("timestamp").values_list("event_type", "status")) == [
        (EventType.ERROR, JobStatus.RETRYING),
        (EventType.CANCELLED, JobStatus.CANCELLED),
    ]
    assert job_manager.execute_job_sync(job.id, 2)["ran"] is False


def in_own_connection(action):
    def run():
        try:
            action()
        finally:
            connections.close_all()

    return run
