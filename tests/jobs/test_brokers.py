"""The brokers' share of the pusher loop (dispatching retries, sweeping) through database outages.

A node's pusher and sentinel live as long as the node: after an outage they must carry on by
themselves. The whole story, with a real outage on two nodes, is in
tests/reliability/test_database_outage.py; these pin each piece on any database.
"""

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from jobs.brokers import ORMBroker, RedisBroker
from jobs.manager import job_manager
from jobs.models import Job, JobRetryHistory, JobStatus
from monitoring.models import EventType, JobExecutionLog
from tests.factories import JobFactory
from tests.reliability.conftest import redis_test_url

OUTAGE = OperationalError('connection failed: FATAL:  database "jobs" is not currently accepting connections')


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def broker(fast_jobs):
    broker = ORMBroker()
    broker.clock = FakeClock()
    return broker


def fail_once(monkeypatch, obj, name):
    real = getattr(obj, name)
    failures = iter([OUTAGE])

    def first_call_fails(*args, **kwargs):
        error = next(failures, None)
        if error:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, name, first_call_fails)


def drop_connection():
    """What pg_terminate_backend leaves a long-lived process (the pusher, the sentinel) with: a
    connection Django believes healthy (its one health check was done when it connected), dead."""
    connection.close()
    connection.ensure_connection()
    connection.connection.close()


def test_after_an_outage_the_sweep_gives_workers_time_to_beat_before_judging_them(db, broker, fast_jobs, monkeypatch):
    # Its heartbeat is old only because nobody could write one during the outage.
    minute_ago = timezone.now() - timedelta(minutes=1)
    job = JobFactory(running=True, started_at=minute_ago, heartbeat_at=minute_ago)
    fail_once(monkeypatch, job_manager, "dispatch_due_retries")

    broker.dispatch_jobs()  # the database is unavailable
    broker.clock.now += fast_jobs["SWEEP_INTERVAL"]
    broker.dispatch_jobs()  # back: but a live worker has not had the chance to beat yet
    assert Job.objects.get(id=job.id).status == JobStatus.RUNNING

    broker.clock.now += fast_jobs["STALE_AFTER"]
    broker.dispatch_jobs()  # a worker alive would have beaten by now: this one is lost
    assert Job.objects.get(id=job.id).status == JobStatus.RETRYING


def test_after_the_node_was_paused_the_sweep_gives_its_workers_time_to_beat_before_judging_them(db, broker, fast_jobs):
    # Its heartbeat is old only because its node was stopped (SIGSTOP, a paused VM) for a minute,
    # its heartbeat threads with it; this dispatch thread now runs before they do.
    minute_ago = timezone.now() - timedelta(minutes=1)
    job = JobFactory(running=True, started_at=minute_ago, heartbeat_at=minute_ago)

    broker.sleep_between_ticks(sleep=lambda seconds: setattr(broker.clock, "now", broker.clock.now + 60))
    broker.dispatch_jobs()
    assert Job.objects.get(id=job.id).status == JobStatus.RUNNING

    broker.clock.now += fast_jobs["STALE_AFTER"]
    broker.dispatch_jobs()  # a worker alive would have beaten by now: this one is lost
    assert Job.objects.get(id=job.id).status == JobStatus.RETRYING


def test_a_sleep_as_long_as_asked_is_no_pause(db, broker, fast_jobs):
    minute_ago = timezone.now() - timedelta(minutes=1)
    job = JobFactory(running=True, started_at=minute_ago, heartbeat_at=minute_ago)

    broker.sleep_between_ticks(sleep=lambda seconds: setattr(broker.clock, "now", broker.clock.now + seconds))
    broker.dispatch_jobs()

    assert Job.objects.get(id=job.id).status == JobStatus.RETRYING


def test_without_an_outage_a_silent_worker_is_judged_at_the_first_sweep(db, broker):
    minute_ago = timezone.now() - timedelta(minutes=1)
    job = JobFactory(running=True, started_at=minute_ago, heartbeat_at=minute_ago)
    broker.dispatch_jobs()
    assert Job.objects.get(id=job.id).status == JobStatus.RETRYING


def test_the_orm_pusher_polls_on_through_an_outage_instead_of_exiting(db, broker, monkeypatch):
    # django-q2's pusher exits (and is restarted 10 s later) on any error from dequeue.
    fail_once(monkeypatch, ORM, "dequeue")
    assert broker.dequeue() is None
    assert broker.dequeue() is None  # the queue is empty; no error


def test_the_pusher_replaces_a_connection_the_database_dropped(postgres_only, transactional_db, broker):
    due = JobFactory(
        status=JobStatus.RETRYING, attempts=1, next_attempt_at=timezone.now() - timedelta(seconds=1), retry_delay=1
    )
    drop_connection()

    broker.dispatch_jobs()  # fails on the dead connection
    broker.clock.now += 1
    broker.dispatch_jobs()  # a fresh one: the retry is dispatched

    assert Job.objects.get(id=due.id).status == JobStatus.QUEUED


def test_the_sentinel_saves_its_status_again_once_the_database_is_back(postgres_only, transactional_db, broker):
    drop_connection()
    with pytest.raises(OperationalError):  # django-q2's Stat.save logs it
        broker.set_stat("django_q:tests:cluster:1", "idle", 3)

    broker.set_stat("django_q:tests:cluster:1", "working", 3)

    assert broker.get_stat("django_q:tests:cluster:1") == "working"


def test_the_orm_broker_hands_out_the_oldest_task_first(db, broker):
    """Postgres returns rows in storage order, which an UPDATE changes: django-q2's ORM broker would
    then hand out later tasks first (and the requeue sweep relies on the order)."""
    first, second, third = (broker.enqueue(f"task {n}") for n in (1, 2, 3))
    OrmQ.objects.filter(id=first).update(payload="task 1")  # its new row version is stored last

    assert [broker.dequeue()[0][0] for _ in range(3)] == [first, second, third]


def test_urgent_tasks_are_handed_out_before_the_queue_oldest_first(db, broker):
    """Alert deliveries go on the urgent lane: they must not wait behind a backlog of jobs."""
    jobs = [broker.enqueue(f"job {n}") for n in (1, 2)]
    urgent = [broker.enqueue_urgent(f"delivery {n}") for n in (1, 2)]

    assert [broker.dequeue()[0][0] for _ in range(4)] == [*urgent, *jobs]
    assert broker.queue_size() == 0


def test_the_orm_broker_looks_at_an_empty_urgent_lane_once_per_poll_interval(db, broker):
    """Not once per task: with hundreds of tasks a second that query would cost the pusher."""
    jobs = [broker.enqueue(f"job {n}") for n in (1, 2, 3)]
    assert broker.dequeue()[0][0] == jobs[0]  # the urgent lane was empty
    urgent = broker.enqueue_urgent("delivery")
    assert broker.dequeue()[0][0] == jobs[1]  # not looked at again yet
    broker.clock.now += Conf.POLL
    assert broker.dequeue()[0][0] == urgent
    assert broker.dequeue()[0][0] == jobs[2]


def test_the_redis_broker_has_the_same_urgent_lane(monkeypatch):
    monkeypatch.setattr(Conf, "REDIS", redis_test_url())
    redis_broker = RedisBroker(list_key="test-urgent-lane")
    redis_broker.purge_queue()
    redis_broker.dispatch_jobs = lambda: None  # no database here: only the lane is under test
    try:
        for n in (1, 2):
            redis_broker.enqueue(f"job {n}")
        for n in (1, 2):
            redis_broker.enqueue_urgent(f"delivery {n}")

        handed_out = [redis_broker.dequeue()[0][1] for _ in range(4)]
        assert handed_out == [b"delivery 1", b"delivery 2", b"job 1", b"job 2"]
        assert redis_broker.dequeue() is None
    finally:
        redis_broker.purge_queue()


def test_periodic_tasks_go_on_the_urgent_lane_ahead_of_a_backlog_of_jobs(transactional_db, broker, settings):
    """Health checks and escalations are needed most when jobs pile up: django-q2's scheduler
    enqueues them on the urgent lane, so the next free worker runs them before the backlog."""
    from django_q.scheduler import scheduler
    from django_q.signing import SignedPackage

    from jobs.schedules import sync_schedules

    settings.PERIODIC_TASKS = {"run_health_checks": {"func": "monitoring.tasks.run_health_checks", "minutes": 1}}
    sync_schedules()
    backlog = [broker.enqueue(f"job {n}") for n in range(3)]

    scheduler(broker=broker)  # as the sentinel runs it (it closes connections: no test transaction)

    first = broker.dequeue()[0]
    assert SignedPackage.loads(first[1])["func"] == "monitoring.tasks.run_health_checks"
    assert [broker.dequeue()[0][0] for _ in backlog] == backlog


# --- Redis losing its data (FLUSHALL, a restart without persistence, an empty replica) -------------

LOST = "its task was lost (the broker lost its queue: Redis was flushed or restarted)"
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def at(seconds: float):
    return time_machine.travel(NOW + timedelta(seconds=seconds), tick=False)


class Node:
    """A node's pusher as the sweep sees it: its Redis broker, its clock, a tick of its dispatch thread."""

    def __init__(self, list_key: str, capture_on_commit):
        self.broker = RedisBroker(list_key=list_key)
        self.broker.clock = FakeClock()
        self.capture_on_commit = capture_on_commit

    def tick(self, seconds: float) -> None:
        with at(seconds), self.capture_on_commit(execute=True):
            self.broker.dispatch_jobs()
        self.broker.clock.now += settings.JOBS["SWEEP_INTERVAL"]

    def requeue(self, seconds: float, limit: int) -> int:
        with at(seconds), self.capture_on_commit(execute=True):
            return job_manager.requeue_lost_jobs(limit=limit, broker=self.broker)

    def waiting(self) -> list[tuple[str, int]]:
        """(job id, attempt) of each task waiting in Redis, in order, taking none."""
        tasks = [SignedPackage.loads(raw) for raw in self.broker.connection.lrange(self.broker.list_key, 0, -1)]
        return [tuple(task["args"]) for task in tasks]


def flush(broker: RedisBroker) -> None:
    """What FLUSHDB does to this queue: every key of it gone (the queue, its urgent lane, the marker),
    and nothing of another run sharing the test database."""
    prefix = broker.list_key.removesuffix(":q")
    for key in broker.connection.scan_iter(f"{prefix}:*"):
        broker.connection.delete(key)


@pytest.fixture
def redis_nodes(db, fast_jobs, monkeypatch, django_capture_on_commit_callbacks):
    """nodes(n) -> n nodes on one Redis queue of the test's own; jobs submitted here are enqueued on it."""
    import jobs.queue

    monkeypatch.setattr(Conf, "REDIS", redis_test_url())
    list_key = f"test-redis-lost-{uuid.uuid4()}"
    started = []

    def nodes(count: int = 1) -> list[Node]:
        started.extend(Node(list_key, django_capture_on_commit_callbacks) for _ in range(count))
        monkeypatch.setattr(jobs.queue, "_broker", (os.getpid(), started[0].broker))
        return started[-count:]

    yield nodes
    if started:
        flush(started[0].broker)


def submit(seconds: float, capture_on_commit, job_type: str = "test.echo") -> Job:
    with at(seconds), capture_on_commit(execute=True):
        return job_manager.submit_job(job_type, {})


def requeue_events(job_ids) -> list[str]:
    events = JobExecutionLog.objects.filter(job_id__in=job_ids, event_type=EventType.QUEUED, details__requeued=True)
    return list(events.values_list("message", flat=True))


def test_when_redis_loses_its_data_the_next_sweep_enqueues_the_queued_jobs_again(
    redis_nodes, django_capture_on_commit_callbacks
):
    """Not JOBS_REQUEUE_AFTER (600 s) later: at the next tick of any node's dispatch thread."""
    (node,) = redis_nodes(1)
    node.tick(-3600)  # Redis in use for an hour already
    jobs = [submit(-120 + n, django_capture_on_commit_callbacks) for n in range(3)]
    held = submit(-60, django_capture_on_commit_callbacks, job_type="test.progress")
    job_manager.pause_job_type_sync("test.progress", by="alice")
    assert len(node.waiting()) == 4
    prefetched = node.broker.dequeue()  # a node took the first job's task before the loss

    flush(node.broker)
    node.tick(0)

    assert node.waiting() == [(str(job.id), 1) for job in jobs]  # oldest first; the held job stays held
    assert requeue_events([job.id for job in jobs]) == [f"attempt 1 enqueued again: {LOST}"] * 3
    assert requeue_events([held.id]) == []
    assert set(Job.objects.filter(id__in=[job.id for job in jobs]).values_list("updated_at", flat=True)) == {NOW}

    node.tick(1)  # once each
    assert len(node.waiting()) == 3
    assert len(requeue_events([job.id for job in jobs])) == 3

    # The prefetched task still runs: the first of the two tasks of that job to arrive runs it, the
    # other is refused by the claim.
    first_job = str(jobs[0].id)
    assert job_manager.execute_job_sync(*SignedPackage.loads(prefetched[0][1])["args"])["ran"] is True
    again = node.broker.dequeue()[0][1]
    assert SignedPackage.loads(again)["args"] == (first_job, 1)
    assert job_manager.execute_job_sync(first_job, 1)["ran"] is False
    assert JobRetryHistory.objects.filter(job_id=first_job).count() == 1


def test_a_second_node_does_not_enqueue_them_again(redis_nodes, django_capture_on_commit_callbacks):
    first, second = redis_nodes(2)
    first.tick(-3600)
    jobs = [submit(-60, django_capture_on_commit_callbacks) for _ in range(3)]

    flush(first.broker)
    first.tick(0)
    second.tick(-0.5)  # its clock half a second behind: the loss was still noticed at NOW
    first.tick(5)
    second.tick(4.5)

    assert len(first.waiting()) == 3
    assert requeue_events([job.id for job in jobs]) == [f"attempt 1 enqueued again: {LOST}"] * 3
    assert first.broker.tasks_lost_before(NOW + timedelta(seconds=10)) == NOW


def test_more_lost_jobs_than_one_sweep_takes_are_finished_by_the_next_sweeps_of_any_node(
    redis_nodes, django_capture_on_commit_callbacks
):
    first, second = redis_nodes(2)
    first.tick(-3600)
    jobs = [submit(-60 + n, django_capture_on_commit_callbacks) for n in range(5)]
    flush(first.broker)

    assert first.requeue(0, limit=2) == 2
    assert second.requeue(-0.5, limit=2) == 2  # a node whose clock is behind: not before the loss
    assert first.requeue(5, limit=2) == 1
    assert second.requeue(4.5, limit=2) == 0

    assert first.waiting() == [(str(job.id), 1) for job in jobs]
    assert len(requeue_events([job.id for job in jobs])) == 5


def test_redis_losing_its_data_again_during_the_requeue_loses_nothing(redis_nodes, django_capture_on_commit_callbacks):
    (node,) = redis_nodes(1)
    node.tick(-3600)
    jobs = [submit(-60, django_capture_on_commit_callbacks) for _ in range(3)]
    flush(node.broker)
    node.tick(0)

    flush(node.broker)  # the tasks just enqueued again are gone too
    node.tick(5)

    assert node.waiting() == [(str(job.id), 1) for job in jobs]
    assert len(requeue_events([job.id for job in jobs])) == 6


def test_with_redis_down_the_tick_fails_without_stopping_the_dispatch_thread(db, fast_jobs, monkeypatch, caplog):
    """Its sweep of dead workers still runs; the requeue cannot and waits for the next tick."""
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")  # nothing listens there
    node = RedisBroker(list_key=f"test-redis-down-{uuid.uuid4()}")
    minute_ago = timezone.now() - timedelta(minutes=1)
    silent = JobFactory(running=True, started_at=minute_ago, heartbeat_at=minute_ago)

    node.dispatch_jobs()

    assert Job.objects.get(id=silent.id).status == JobStatus.RETRYING
    assert [r.message for r in caplog.records if r.name == "jobs.brokers"] == ["job dispatch failed"]
