"""Pausing a job type (its service is down, a bad deploy): its queued jobs wait instead of
burning their attempts; resuming it enqueues each of them again, and each runs once."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, close_old_connections, connection
from django.utils import timezone
from django_q.models import OrmQ

from jobs.manager import JobStateConflict, job_manager
from jobs.models import Job, JobStatus, JobTypePause
from jobs.registry import UnknownJobType
from jobs.tasks import run_job
from monitoring.models import EventType, JobExecutionLog
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def test_a_paused_job_types_task_does_not_start_its_job_and_the_job_waits_queued():
    held = job_manager.submit_job("test.echo", {"n": 1})
    other = job_manager.submit_job("test.progress", {"reports": [50]})
    assert job_manager.pause_job_type_sync("test.echo", by="alice", reason="echo service down") is True

    assert run_job(str(held.id), 1)["ran"] is False
    assert run_job(str(other.id), 1)["ran"] is True  # other job types run on

    held.refresh_from_db()
    assert (held.status, held.attempts) == (JobStatus.QUEUED, 0)
    assert not held.logs.filter(event_type=EventType.STARTED).exists()
    pause = JobTypePause.objects.get()
    assert (pause.job_type, pause.paused_by, pause.reason) == ("test.echo", "alice", "echo service down")


def test_pausing_twice_keeps_the_first_pause():
    assert job_manager.pause_job_type_sync("test.echo", by="alice", reason="first") is True
    assert job_manager.pause_job_type_sync("test.echo", by="bob", reason="second") is False
    assert JobTypePause.objects.get().paused_by == "alice"


def test_a_pause_whose_row_a_resume_deleted_before_it_could_read_it_looks_again_and_pauses(monkeypatch):
    """Drill: 10 pauses racing 10 resumes gave 4 500s in 150: a pause's insert met another pause's
    row, which a resume deleted before get_or_create read it back (IntegrityError re-raised)."""
    real = JobTypePause.objects.get_or_create
    calls = []

    def raced_once(**kwargs):
        calls.append(kwargs["job_type"])
        if len(calls) == 1:
            raise IntegrityError('duplicate key value violates unique constraint "job_type_pauses_pkey"')
        return real(**kwargs)

    monkeypatch.setattr(JobTypePause.objects, "get_or_create", raced_once)

    assert job_manager.pause_job_type_sync("test.echo", by="alice") is True
    assert calls == ["test.echo", "test.echo"] and JobTypePause.objects.get().paused_by == "alice"


def test_a_pause_that_keeps_losing_that_race_is_a_conflict_to_try_again(monkeypatch):
    def always_raced(**kwargs):
        raise IntegrityError('duplicate key value violates unique constraint "job_type_pauses_pkey"')

    monkeypatch.setattr(JobTypePause.objects, "get_or_create", always_raced)

    with pytest.raises(JobStateConflict, match="test.echo was paused and resumed meanwhile, three times; try again"):
        job_manager.pause_job_type_sync("test.echo", by="alice")


def test_a_name_neither_registered_nor_ever_submitted_is_refused_a_typo_pauses_nothing():
    with pytest.raises(UnknownJobType, match="unknown job type 'test.ech'; known job types: .*test.echo"):
        job_manager.pause_job_type_sync("test.ech", by="alice")
    assert not JobTypePause.objects.exists()


def test_a_type_no_longer_registered_whose_jobs_are_still_here_may_be_paused():
    """Jobs queued before a deploy that removed their type keep its name."""
    JobFactory(job_type="imports.legacy")
    assert job_manager.pause_job_type_sync("imports.legacy", by="alice") is True


@time_machine.travel(NOW, tick=False)
def test_resuming_enqueues_every_held_job_again_once_and_says_so(django_capture_on_commit_callbacks):
    held = [job_manager.submit_job("test.echo", {"n": n}) for n in range(3)]
    job_manager.pause_job_type_sync("test.echo", by="alice")
    for job in held:
        run_job(str(job.id), 1)  # their tasks are spent, refused
    OrmQ.objects.all().delete()
    Job.objects.filter(id__in=[job.id for job in held]).update(updated_at=NOW - timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert job_manager.resume_job_type_sync("test.echo", by="bob") == 3
    assert job_manager.resume_job_type_sync("test.echo", by="carol") is None  # nothing left to resume

    assert OrmQ.objects.count() == 3  # one task each
    assert not JobTypePause.objects.exists()
    for job in held:
        [event] = JobExecutionLog.objects.filter(job=job, event_type=EventType.QUEUED, details__resumed=True)
        assert event.message == "attempt 1 enqueued again: test.echo resumed by bob"
        assert event.details == {"attempt": 1, "resumed": True, "by": "bob"}
        assert Job.objects.get(id=job.id).updated_at == NOW  # the lost-job sweep waits from now
        assert run_job(str(job.id), 1)["ran"] is True
        assert run_job(str(job.id), 1)["ran"] is False  # a leftover task of the pause: refused


@time_machine.travel(NOW, tick=False)
def test_resuming_enqueues_the_held_jobs_in_the_order_they_were_queued(monkeypatch):
    """Newest first, the oldest held job started two minutes after a resume of 81."""
    first, second, third = (
        JobFactory(job_type="test.echo", status=JobStatus.QUEUED, queued_at=NOW - timedelta(minutes=m)) for m in (9, 5, 1)
    )
    Job.objects.filter(id=first.id).update(updated_at=NOW)  # most recently touched, yet queued first
    job_manager.pause_job_type_sync("test.echo")
    enqueued = []
    monkeypatch.setattr(job_manager, "_enqueue_on_commit", lambda job_id, attempt, job_type: enqueued.append(job_id))

    job_manager.resume_job_type_sync("test.echo")

    assert enqueued == [first.id, second.id, third.id]


@time_machine.travel(NOW, tick=False)
def test_the_lost_job_sweep_leaves_held_jobs_alone(settings, django_capture_on_commit_callbacks):
    settings.JOBS = {**settings.JOBS, "REQUEUE_AFTER": 600.0}
    held = JobFactory(job_type="test.echo", status=JobStatus.QUEUED, updated_at=NOW - timedelta(hours=2))
    lost = JobFactory(job_type="test.progress", status=JobStatus.QUEUED, updated_at=NOW - timedelta(hours=2))
    job_manager.pause_job_type_sync("test.echo")

    with django_capture_on_commit_callbacks(execute=True):
        assert job_manager.requeue_lost_jobs() == 1

    assert Job.objects.get(id=lost.id).updated_at == NOW
    assert Job.objects.get(id=held.id).updated_at == NOW - timedelta(hours=2)  # held, not lost
    # Had the pause been removed by other means (admin), the sweep would take them back.
    JobTypePause.objects.all().delete()
    OrmQ.objects.all().delete()  # the lost job's task ran
    with django_capture_on_commit_callbacks(execute=True):
        assert job_manager.requeue_lost_jobs() == 1
    assert Job.objects.get(id=held.id).updated_at == NOW


def test_a_retry_coming_due_while_paused_waits_queued_too(django_capture_on_commit_callbacks):
    job = JobFactory(job_type="test.echo", status=JobStatus.RETRYING, attempts=1, next_attempt_at=NOW)
    job_manager.pause_job_type_sync("test.echo")
    with time_machine.travel(NOW + timedelta(seconds=1), tick=False), django_capture_on_commit_callbacks(execute=True):
        assert job_manager.dispatch_due_retries() == 1
    assert run_job(str(job.id), 2)["ran"] is False
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections writing at once: Postgres")
@pytest.mark.django_db(transaction=True)
def test_a_retry_refused_by_the_pause_while_the_resume_commits_is_enqueued_by_the_resume(monkeypatch):
    """A retry comes due while the operator resumes: dispatched and claimed by another node just
    before the resume commits, its claim still sees the pause. It must not wait for the lost-job
    sweep (10 minutes): the resume reads the held jobs only once the pause is gone."""
    job_manager.pause_job_type_sync("test.echo")
    held = job_manager.submit_job("test.echo", {"n": 1})
    retry = JobFactory(job_type="test.echo", status=JobStatus.RETRYING, attempts=1, next_attempt_at=timezone.now())
    OrmQ.objects.all().delete()
    record_events = job_manager.monitoring.record_events_sync

    def another_node_dispatches_and_claims_meanwhile(events):
        def dispatch_and_claim():
            try:
                job_manager.dispatch_due_retries()
                OrmQ.objects.all().delete()  # the task it enqueued is taken by a worker, which runs it:
                run_job(str(retry.id), 2)
            finally:
                close_old_connections()

        node = threading.Thread(target=dispatch_and_claim)
        node.start()
        node.join()
        return record_events(events)

    monkeypatch.setattr(job_manager.monitoring, "record_events_sync", another_node_dispatches_and_claims_meanwhile)

    job_manager.resume_job_type_sync("test.echo")

    retry.refresh_from_db()
    waiting_tasks = {task.task["args"][0] for task in OrmQ.objects.all()}
    assert str(held.id) in waiting_tasks
    assert retry.status == JobStatus.COMPLETED or str(retry.id) in waiting_tasks
