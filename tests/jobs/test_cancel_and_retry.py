"""Operators' actions: cancel and retry (the API, the dashboard and admin call these)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from django_q.models import OrmQ

from jobs.manager import JobNotFound, JobStateConflict, job_manager
from jobs.models import Job, JobStatus
from jobs.tasks import run_job
from monitoring import selectors
from monitoring.models import EventType
from monitoring.timeline import attempt_clock
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RETRYING])
def test_a_waiting_job_is_cancelled_at_once(status):
    job = JobFactory(status=status, attempts=1 if status == JobStatus.RETRYING else 0)
    assert job_manager.cancel_job_sync(job.id, by="alice") is True
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None
    assert job.logs.get().message == f"cancelled by alice before attempt {job.attempts + 1} started"


def test_a_running_job_is_asked_to_stop_once():
    job = JobFactory(running=True)
    assert job_manager.cancel_job_sync(job.id, by="alice") is True
    assert job_manager.cancel_job_sync(job.id, by="alice") is True  # a double click changes nothing
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.cancel_requested_at is not None
    assert list(job.logs.values_list("event_type", flat=True)) == [EventType.CANCEL_REQUESTED]


def test_asking_a_silent_job_to_stop_does_not_hide_its_silence():
    # The request is not a report from the job: a stuck job stays flagged as silent, and the
    # operator sees the request has not been taken up.
    now = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    started = now - timedelta(minutes=5)
    job = JobFactory(running=True, job_type="demo.sleep", started_at=started, updated_at=started, message="step 2/5")

    with time_machine.travel(now, tick=False):
        job_manager.cancel_job_sync(job.id, by="alice")

    job = Job.objects.get(id=job.id)
    assert (job.cancel_requested_at, job.message, job.updated_at) == (now, "step 2/5", started)
    clock = attempt_clock(job, now)
    assert clock.silent == 300 and clock.too_quiet


@pytest.mark.parametrize("trait", ["completed", "failed"])
def test_a_finished_job_cannot_be_cancelled(trait):
    job = JobFactory(**{trait: True})
    with pytest.raises(
        JobStateConflict, match=f"is {job.status}: only queued, running or retrying jobs can be cancelled"
    ):
        job_manager.cancel_job_sync(job.id)


def test_a_failed_job_is_retried_with_a_fresh_budget(django_capture_on_commit_callbacks):
    job = JobFactory(failed=True, job_type="demo.fail", attempts=3, max_attempts=3, progress=40)
    with django_capture_on_commit_callbacks(execute=True):
        assert job_manager.retry_job_sync(job.id, by="alice") is True
    job.refresh_from_db()
    assert (job.status, job.max_attempts, job.finished_at, job.progress) == (JobStatus.QUEUED, 6, None, 0)
    retry = job.logs.get(event_type=EventType.RETRY)
    assert retry.details == {"attempt": 4, "manual": True, "by": "alice"}
    assert OrmQ.objects.count() == 1


def test_a_job_cancelled_while_running_and_then_retried_runs_to_the_end():
    """The cancel request was for the attempt it stopped, not for the one an operator asks for next."""
    stopped = timezone.now()
    job = JobFactory(
        job_type="test.progress",
        parameters={"reports": [50]},
        status=JobStatus.CANCELLED,
        attempts=1,
        cancel_requested_at=stopped,
        finished_at=stopped,
    )
    job_manager.retry_job_sync(job.id, by="alice")

    run_job(str(job.id), 2)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.result) == (JobStatus.COMPLETED, 2, {"done": True})
    assert job.cancel_requested_at is None


def test_retry_refuses_running_jobs_and_stale_attempt_numbers():
    with pytest.raises(JobStateConflict, match="is running: only failed, cancelled or retrying jobs can be retried"):
        job_manager.retry_job_sync(JobFactory(running=True).id)
    failed = JobFactory(failed=True, attempts=3)
    with pytest.raises(JobStateConflict, match="attempt 3 is not next"):
        job_manager.retry_job_sync(failed.id, attempt=3)


def test_a_retry_that_loses_to_another_says_what_the_job_is_now(monkeypatch):
    """Drill: of 20 parallel retries the 19 losers were told "changed state; try again", and trying
    again only said "is queued"."""
    failed = JobFactory(failed=True, attempts=1)
    read_before_the_other_won = Job.objects.get(id=failed.id)
    job_manager.retry_job_sync(failed.id, by="bob")
    monkeypatch.setattr(job_manager, "_get", lambda job_id: read_before_the_other_won)

    with pytest.raises(JobStateConflict, match=r"changed state meanwhile, it is queued now \(retried by another"):
        job_manager.retry_job_sync(failed.id, by="alice")


def test_unknown_jobs_are_reported_as_not_found():
    with pytest.raises(JobNotFound):
        job_manager.cancel_job_sync("8b0f5a4e-0000-0000-0000-000000000000")
    with pytest.raises(JobNotFound):
        job_manager.retry_job_sync("not-a-uuid")
    assert not Job.objects.exists()


def test_retry_these_leaves_a_job_another_operator_retried_and_cancelled_since_its_list_was_read():
    """The bulk "Retry these" acts on the jobs as its list read them. Meanwhile bob retried one and
    cancelled it again before it started (its type was paused, say): his cancel stands, and
    the job is counted among those that changed since, not queued again behind his back.
    (Listed as cancelled, it is back in the same status and attempts: only its updated_at tells.
    A job listed as failed would be cancelled now, refused by its status alone.)"""
    listed_as = JobStatus.CANCELLED
    finished = NOW - timedelta(minutes=10)
    jobs = [
        JobFactory(status=listed_as, attempts=1, max_attempts=1, finished_at=finished, updated_at=finished)
        for _ in range(2)
    ]
    with time_machine.travel(NOW, tick=False):
        listed, _ = selectors.finished_jobs(since=NOW - timedelta(hours=1), status=listed_as)
    with time_machine.travel(NOW + timedelta(seconds=1), tick=False):
        job_manager.retry_job_sync(jobs[0].id, by="bob")
    with time_machine.travel(NOW + timedelta(seconds=2), tick=False):
        job_manager.cancel_job_sync(jobs[0].id, by="bob")

    with time_machine.travel(NOW + timedelta(seconds=3), tick=False):
        assert job_manager.retry_jobs_sync(listed, by="alice") == (1, 1)

    bobs, other = (Job.objects.get(id=job.id) for job in jobs)
    assert (bobs.status, bobs.attempts, bobs.message) == (JobStatus.CANCELLED, 1, "cancelled by bob")
    assert [e.message for e in bobs.logs.order_by("timestamp")] == [
        "retry requested by bob: attempt 2 queued",
        "cancelled by bob before attempt 2 started",
    ]
    assert (other.status, other.attempts, other.message) == (JobStatus.QUEUED, 1, "retry requested by alice")
