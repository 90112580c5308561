"""The periodic work every cluster's pusher does: due retries, dead workers, lost enqueues."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_q.models import OrmQ

from jobs.manager import EnhancedJobManager, job_manager
from jobs.models import Job, JobRetryHistory, JobStatus
from jobs.queue import shared_broker
from monitoring.models import EventType, JobExecutionLog
from tests.factories import JobFactory, JobRetryHistoryFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def jobs_settings(settings):
    settings.JOBS = {**settings.JOBS, "STALE_AFTER": 30.0, "REQUEUE_AFTER": 600.0}
    return settings.JOBS


def retrying_job(due_in: float, delay: float = 2.4, attempts: int = 1):
    return JobFactory(
        job_type="demo.fail",
        status=JobStatus.RETRYING,
        attempts=attempts,
        retry_delay=delay,
        next_attempt_at=NOW + timedelta(seconds=due_in),
        progress=60,  # where the failed attempt stopped
    )


@time_machine.travel(NOW, tick=False)
def test_due_retries_are_queued_and_enqueued_once(django_capture_on_commit_callbacks):
    due, later = retrying_job(due_in=-0.3), retrying_job(due_in=5)

    with django_capture_on_commit_callbacks(execute=True):
        assert job_manager.dispatch_due_retries() == 1
        assert job_manager.dispatch_due_retries() == 0  # another cluster's tick finds nothing

    due.refresh_from_db()
    assert (due.status, due.message, due.progress) == (JobStatus.QUEUED, "attempt 2 queued", 0)
    assert Job.objects.get(id=later.id).status == JobStatus.RETRYING
    retry = JobExecutionLog.objects.get(job=due, event_type=EventType.RETRY)
    assert retry.details == {"attempt": 2, "planned_delay_s": 2.4, "waited_s": 2.7}
    assert OrmQ.objects.count() == 1


def stale_running_job(heartbeat_seconds_ago: float, started_seconds_ago: float = 60, **fields):
    job = JobFactory(
        job_type="demo.sleep",
        status=JobStatus.RUNNING,
        attempts=1,
        worker="node-2:4711",
        attempt_started_at=NOW - timedelta(seconds=started_seconds_ago),
        heartbeat_at=NOW - timedelta(seconds=heartbeat_seconds_ago),
        **fields,
    )
    JobRetryHistoryFactory(job=job, attempt_number=1, status="running")
    return job


@time_machine.travel(NOW, tick=False)
def test_a_job_whose_worker_went_silent_is_failed_as_a_system_error_and_retried(jobs_settings):
    lost, alive = stale_running_job(heartbeat_seconds_ago=31), stale_running_job(heartbeat_seconds_ago=4)

    assert job_manager.recover_stale_jobs(now=NOW) == 1

    lost.refresh_from_db()
    assert lost.status == JobStatus.RETRYING and lost.error_class == "system"
    assert lost.last_error["type"] == "jobs.errors.WorkerLostError"
    assert "worker node-2:4711 stopped sending heartbeats at 2026-11-29 02:59:29 UTC" in lost.message
    attempt = JobRetryHistory.objects.get(job=lost)
    assert attempt.status == "failed" and attempt.completed_at == NOW
    error = JobExecutionLog.objects.get(job=lost, event_type=EventType.ERROR)
    assert error.execution_time_ms == 29_000  # from its start to its last heartbeat
    assert Job.objects.get(id=alive.id).status == JobStatus.RUNNING


@time_machine.travel(NOW, tick=False)
def test_a_worker_killed_between_heartbeats_ran_until_its_last_progress_report(jobs_settings):
    """Heartbeats come every 5 s; progress reports in between are later signs of life (a drill
    saw "Ran for 1 ms" for a job killed 4 s in, at step 4 of 60)."""
    lost = stale_running_job(heartbeat_seconds_ago=40, started_seconds_ago=40)
    for seconds_ago in (39, 37, 36):
        JobExecutionLog.objects.create(
            job=lost, event_type=EventType.PROGRESS, status="running", timestamp=NOW - timedelta(seconds=seconds_ago)
        )
    earlier = stale_running_job(heartbeat_seconds_ago=40, started_seconds_ago=40)
    JobExecutionLog.objects.create(  # its previous attempt's, before this one started
        job=earlier, event_type=EventType.PROGRESS, status="running", timestamp=NOW - timedelta(seconds=45)
    )

    job_manager.recover_stale_jobs(now=NOW)

    assert JobExecutionLog.objects.get(job=lost, event_type=EventType.ERROR).execution_time_ms == 4_000
    assert JobExecutionLog.objects.get(job=earlier, event_type=EventType.ERROR).execution_time_ms == 0


@time_machine.travel(NOW, tick=False)
def test_a_running_row_without_its_attempts_start_does_not_stop_the_sweep(jobs_settings):
    """A drill inserted such a row by hand: every sweep then raised a TypeError, and the other lost
    jobs were never taken back."""
    odd = stale_running_job(heartbeat_seconds_ago=40)
    Job.objects.filter(id=odd.id).update(attempt_started_at=None)
    lost = stale_running_job(heartbeat_seconds_ago=50)

    assert job_manager.recover_stale_jobs(now=NOW) == 2

    assert {Job.objects.get(id=job.id).status for job in (odd, lost)} == {JobStatus.RETRYING}


@time_machine.travel(NOW, tick=False)
def test_a_silent_job_past_its_timeout_is_recorded_as_timed_out(jobs_settings):
    job = stale_running_job(heartbeat_seconds_ago=40, started_seconds_ago=700)  # demo.sleep: 600 s
    job_manager.recover_stale_jobs(now=NOW)
    job.refresh_from_db()
    assert job.last_error["type"] == "jobs.errors.JobTimeoutError"
    assert "ran past its 600s timeout" in job.message


@time_machine.travel(NOW, tick=False)
def test_a_silent_job_on_its_last_attempt_fails_for_good(jobs_settings):
    job = stale_running_job(heartbeat_seconds_ago=40, max_attempts=1)
    job_manager.recover_stale_jobs(now=NOW)
    assert Job.objects.get(id=job.id).status == JobStatus.FAILED


@time_machine.travel(NOW, tick=False)
def test_a_silent_job_asked_to_cancel_is_cancelled(jobs_settings):
    job = stale_running_job(heartbeat_seconds_ago=40, cancel_requested_at=NOW - timedelta(seconds=50))
    job_manager.recover_stale_jobs(now=NOW)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert JobRetryHistory.objects.get(job=job).status == "cancelled"


@time_machine.travel(NOW, tick=False)
def test_a_heartbeat_arriving_during_the_sweep_wins(jobs_settings, monkeypatch):
    """The sweep only takes a job whose heartbeat is still the stale one it read."""
    job = stale_running_job(heartbeat_seconds_ago=40)
    real_transition = EnhancedJobManager._transition

    def heartbeat_lands_first(self, job_id, attempt, **kwargs):
        Job.objects.filter(id=job_id).update(heartbeat_at=NOW)  # the worker was alive after all
        return real_transition(self, job_id, attempt, **kwargs)

    monkeypatch.setattr(EnhancedJobManager, "_transition", heartbeat_lands_first)
    job_manager.recover_stale_jobs(now=NOW)
    assert Job.objects.get(id=job.id).status == JobStatus.RUNNING
    assert not JobExecutionLog.objects.filter(job=job).exists()


@time_machine.travel(NOW, tick=False)
def test_a_heartbeat_arriving_during_the_sweep_wins_for_a_job_asked_to_cancel_too(jobs_settings, monkeypatch):
    """Its worker is alive and stopping: the cancellation it records itself stands."""
    job = stale_running_job(heartbeat_seconds_ago=40, cancel_requested_at=NOW - timedelta(seconds=50))
    real_transition = EnhancedJobManager._transition

    def heartbeat_lands_first(self, job_id, attempt, **kwargs):
        Job.objects.filter(id=job_id).update(heartbeat_at=NOW)
        return real_transition(self, job_id, attempt, **kwargs)

    monkeypatch.setattr(EnhancedJobManager, "_transition", heartbeat_lands_first)
    job_manager.recover_stale_jobs(now=NOW)
    assert Job.objects.get(id=job.id).status == JobStatus.RUNNING
    assert not JobExecutionLog.objects.filter(job=job).exists()


@time_machine.travel(NOW, tick=False)
def test_a_queued_job_nobody_picked_up_is_enqueued_again_when_the_queue_is_empty(
    jobs_settings, django_capture_on_commit_callbacks
):
    lost = JobFactory(status=JobStatus.QUEUED, updated_at=NOW - timedelta(minutes=11))
    recent = JobFactory(status=JobStatus.QUEUED, updated_at=NOW - timedelta(minutes=2))

    with django_capture_on_commit_callbacks(execute=True):
        assert job_manager.requeue_lost_jobs() == 1
    assert OrmQ.objects.count() == 1
    assert Job.objects.get(id=lost.id).updated_at == NOW
    assert JobExecutionLog.objects.get(job=lost).details == {"attempt": 1, "requeued": True}
    assert Job.objects.get(id=recent.id).updated_at == NOW - timedelta(minutes=2)

    # With tasks waiting in the broker, a queued job is most likely just waiting its turn.
    Job.objects.filter(id=lost.id).update(updated_at=NOW - timedelta(minutes=20))
    assert job_manager.requeue_lost_jobs() == 0


def broker_backlog(tasks: int = 3):
    """Tasks of other jobs waiting in the (ORM) broker: its queue is not empty."""
    broker = shared_broker()
    for _ in range(tasks):
        broker.enqueue("a task of another job")


@time_machine.travel(NOW, tick=False)
def test_behind_a_backlog_a_lost_task_is_enqueued_again_once_workers_run_jobs_queued_after_it(
    jobs_settings, django_capture_on_commit_callbacks
):
    """A node died with tasks it had taken from the broker, and other nodes keep a backlog there:
    the queue never empties, but workers running attempts queued well after a waiting job show
    that its task is no longer ahead of them."""
    broker_backlog()
    passed = JobFactory(status=JobStatus.QUEUED, updated_at=NOW - timedelta(minutes=25))
    JobFactory(running=True, queued_at=NOW - timedelta(minutes=14))  # taken by a worker just now
    in_turn = JobFactory(status=JobStatus.QUEUED, updated_at=NOW - timedelta(minutes=20))  # 6 min before it

    with django_capture_on_commit_callbacks(execute=True):
        assert job_manager.requeue_lost_jobs() == 1

    passed.refresh_from_db()
    assert passed.updated_at == NOW
    event = JobExecutionLog.objects.get(job=passed)
    assert event.details == {"attempt": 1, "requeued": True}
    assert event.message == "attempt 1 enqueued again: its task was lost (workers already run attempts queued after it)"
    assert Job.objects.get(id=in_turn.id).updated_at == NOW - timedelta(minutes=20)
    assert OrmQ.objects.count() == 3 + 1


@time_machine.travel(NOW, tick=False)
def test_behind_a_backlog_a_job_waits_its_turn_while_no_later_job_runs(jobs_settings):
    broker_backlog()
    JobFactory(status=JobStatus.QUEUED, updated_at=NOW - timedelta(minutes=25))
    JobFactory(running=True, queued_at=NOW - timedelta(minutes=30))  # queued before it: no evidence
    JobFactory(running=True, queued_at=None)  # claimed before queue times were recorded

    assert job_manager.requeue_lost_jobs() == 0

    Job.objects.filter(status=JobStatus.RUNNING).delete()  # nothing running at all: no evidence either
    assert job_manager.requeue_lost_jobs() == 0


def test_a_duplicate_task_is_no_evidence_that_workers_passed_anything(
    jobs_settings, django_capture_on_commit_callbacks
):
    """A job enqueued again while its first task was only held up (prefetched by a node busy with a
    long job) may then run from that first task. Read with the time of the second enqueue, it would
    make jobs still waiting their turn in the broker look passed, and so on down the queue."""
    broker = shared_broker()

    def at(minutes):
        return time_machine.travel(NOW + timedelta(minutes=minutes), tick=False)

    def submit(minutes):
        with at(minutes), django_capture_on_commit_callbacks(execute=True):
            return job_manager.submit_job("demo.sleep", {"seconds": 1})

    def sweep(minutes):
        with at(minutes), django_capture_on_commit_callbacks(execute=True):
            return job_manager.requeue_lost_jobs()

    held_up, later = submit(0), submit(11)
    for minutes in (15, 20, 25, 31, 33):  # a backlog: each waits longer than REQUEUE_AFTER
        submit(minutes)
    with at(39):
        broker.dequeue(), broker.dequeue()  # one node takes held_up's task and sits on it, another later's
    with at(40):
        job_manager._claim(later.id, 1)
    assert sweep(40) == 1  # held_up: its task looks lost (a duplicate, refused if both run)

    with at(45):
        job_manager._claim(held_up.id, 1)  # from its first task after all
    assert Job.objects.get(id=held_up.id).queued_at == NOW
    assert sweep(45) == 0  # the jobs queued at 15, 20, 25 are still in the broker, in order
    assert sweep(50) == 0


@time_machine.travel(NOW, tick=False)
def test_every_way_into_the_queue_records_when(jobs_settings, django_capture_on_commit_callbacks):
    """queued_at is what the sweep compares: submitted, retried by hand and dispatched retries set it,
    and a claimed attempt keeps it."""
    with django_capture_on_commit_callbacks(execute=True):
        submitted = job_manager.submit_job("demo.sleep", {"seconds": 1})
    assert submitted.queued_at == NOW
    job_manager._claim(submitted.id, 1)
    assert Job.objects.get(id=submitted.id).queued_at == NOW

    failed = JobFactory(failed=True, queued_at=NOW - timedelta(hours=1))
    due = retrying_job(due_in=-1)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False), django_capture_on_commit_callbacks(execute=True):
        job_manager.retry_job_sync(failed.id)
        job_manager.dispatch_due_retries()
    assert Job.objects.get(id=failed.id).queued_at == NOW + timedelta(minutes=1)
    assert Job.objects.get(id=due.id).queued_at == NOW + timedelta(minutes=1)


def test_heartbeats_are_judged_by_the_database_clock_not_the_sweeping_nodes(jobs_settings):
    """A node whose clock runs two minutes ahead must not take live jobs of other nodes back."""
    from django.utils import timezone

    alive = job_manager.submit_job("demo.sleep", {"seconds": 1})
    job_manager._claim(alive.id, 1)  # its heartbeat: the database's now()
    silent = stale_running_job(heartbeat_seconds_ago=0)
    Job.objects.filter(id=silent.id).update(heartbeat_at=timezone.now() - timedelta(seconds=60))

    with time_machine.travel(timezone.now() + timedelta(minutes=2)):  # this node's clock is fast
        assert job_manager.recover_stale_jobs() == 1

    assert Job.objects.get(id=alive.id).status == JobStatus.RUNNING
    assert Job.objects.get(id=silent.id).status == JobStatus.RETRYING


def test_a_heartbeat_the_database_wrote_is_taken_back_once_stale(jobs_settings):
    """The sweep takes a job only if its heartbeat is still the one it read (compare-and-set):
    a value the database wrote must compare equal once read back, on SQLite as on Postgres."""
    from django.utils import timezone

    job = job_manager.submit_job("demo.sleep", {"seconds": 1})
    job_manager._claim(job.id, 1)

    assert job_manager.recover_stale_jobs(now=timezone.now() + timedelta(minutes=5)) == 1
    assert Job.objects.get(id=job.id).status == JobStatus.RETRYING
