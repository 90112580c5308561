"""Redis losing its data (FLUSHDB, a restart without persistence, a failover to an empty replica) while
jobs wait in it: Postgres still has every job queued, and the sweep enqueues them again at once."""

import time

import pytest

from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from jobs.queue import shared_broker
from monitoring.models import EventType, JobExecutionLog
from tests.conftest import wait_for
from tests.reliability.faults import redis_lost_its_data
from tests.reliability.ledger import Ledger
from tests.reliability.test_worker_killed import all_finished, running_jobs

pytestmark = [pytest.mark.reliability, pytest.mark.worker]

LOST = "attempt 1 enqueued again: its task was lost (the broker lost its queue: Redis was flushed or restarted)"


def test_jobs_whose_tasks_redis_lost_are_enqueued_again_at_once_and_each_runs_once(cluster_nodes, run_log, figures):
    """Before, they waited JOBS_REQUEUE_AFTER (600 s, the default, kept here): a drill saw 48 jobs
    wait ten minutes doing nothing."""
    cluster_nodes(2, workers=2, broker="redis", JOBS_REQUEUE_AFTER="600")
    # 1 s each, more than both nodes take from the queue at once (up to 7 each).
    jobs = [job_manager.submit_job("reliability.steps", {"steps": 10, "seconds": 0.1}) for _ in range(30)]
    wait_for(lambda: running_jobs(at_least=4), timeout=30, message="both nodes to run jobs")

    lost = redis_lost_its_data(shared_broker())
    flushed = time.monotonic()
    assert lost >= 10  # tasks of jobs still waiting in Redis

    wait_for(all_finished, timeout=60, message="every job to finish")
    took = time.monotonic() - flushed
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    ledger = Ledger.read(run_log.runs())
    assert ledger.problems() == []  # each attempt ran once, duplicates refused by the claim
    assert ledger.attempts == len(jobs)
    requeued = JobExecutionLog.objects.filter(event_type=EventType.QUEUED, details__requeued=True)
    # Every lost task's job, and those the nodes held taken from Redis (duplicates): each enqueued
    # again once, at once, for the loss.
    assert lost <= requeued.count() == requeued.values("job_id").distinct().count()
    assert set(requeued.values_list("message", flat=True)) == {LOST}
    assert took < 60
    figures(
        f"redis broker: {lost} tasks lost with 30 jobs queued on 2 nodes; {requeued.count()} jobs enqueued again "
        f"at the next sweep; all completed once, {took:.1f} s after the loss (JOBS_REQUEUE_AFTER 600 s)"
    )
