"""The brokers' share of the pusher loop (dispatching retries, sweeping) through database outages.

A node's pusher and sentinel live as long as the node: after an outage they must carry on by
themselves. The whole story, with a real outage on two nodes, is in
tests/reliability/test_database_outage.py; these pin each piece on any database.
"""

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.models import OrmQ

from jobs.brokers import ORMBroker
from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from tests.factories import JobFactory

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
    from django_q.conf import Conf

    jobs = [broker.enqueue(f"job {n}") for n in (1, 2, 3)]
    assert broker.dequeue()[0][0] == jobs[0]  # the urgent lane was empty
    urgent = broker.enqueue_urgent("delivery")
    assert broker.dequeue()[0][0] == jobs[1]  # not looked at again yet
    broker.clock.now += Conf.POLL
    assert broker.dequeue()[0][0] == urgent
    assert broker.dequeue()[0][0] == jobs[2]


def test_the_redis_broker_has_the_same_urgent_lane(monkeypatch):
    from django_q.conf import Conf

    from jobs.brokers import RedisBroker
    from tests.reliability.conftest import redis_test_url

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
