"""A django-q2 worker process killed with SIGKILL in the middle of a job, with several jobs in flight
on two `qcluster` nodes."""

import os
import signal
import time

import psutil
import pytest

from jobs.manager import job_manager
from jobs.models import Job, JobRetryHistory, JobStatus
from monitoring.models import EventType, JobExecutionLog
from tests.conftest import wait_for
from tests.reliability.ledger import Ledger

pytestmark = [pytest.mark.reliability, pytest.mark.worker]


def running_jobs(at_least: int):
    jobs = list(Job.objects.filter(status=JobStatus.RUNNING, progress__gt=0))
    return jobs if len(jobs) >= at_least else None


def worker_pid(job: Job) -> int:
    return int(job.worker.rsplit(":", 1)[1])


def kill_once_it_runs_two_jobs(node):
    """SIGKILL to the node's whole process group (a machine lost) while two of its workers run jobs."""

    def two_running():
        running = Job.objects.filter(status=JobStatus.RUNNING, progress__gt=0, worker__startswith=f"{node.name}:")
        return running.count() == 2

    wait_for(two_running, timeout=30, message=f"{node.name} to run two jobs")
    os.killpg(node.pid, signal.SIGKILL)


def all_finished():
    return not Job.objects.exclude(status__in=[JobStatus.COMPLETED, JobStatus.FAILED]).exists()


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_jobs_of_killed_workers_are_taken_back_and_retried_once(cluster_nodes, run_log, figures, broker):
    nodes = cluster_nodes(2, workers=2, broker=broker)
    # Each node's pusher prefetches up to 7 tasks (2 running, 4 queued, 1 in hand): 16 jobs keep
    # both nodes' workers busy.
    jobs = [job_manager.submit_job("reliability.steps", {"steps": 20, "seconds": 0.1}) for _ in range(16)]
    in_flight = wait_for(lambda: running_jobs(at_least=4), timeout=30, message="four jobs to run at once")
    victims = in_flight[:2]

    for job in victims:
        os.kill(worker_pid(job), signal.SIGKILL)

    wait_for(all_finished, timeout=60, message="every job to finish")
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    for victim in victims:
        job = Job.objects.get(id=victim.id)
        assert job.attempts == 2
        first = JobRetryHistory.objects.get(job=job, attempt_number=1)
        assert first.status == "failed"
        assert f"worker {victim.worker} stopped sending heartbeats" in first.error_message
        error = JobExecutionLog.objects.get(job=job, event_type=EventType.ERROR)
        assert error.error_details["error_class"] == "system"
        assert error.error_details["type"] == "jobs.errors.WorkerLostError"
        assert error.details["retryable"] is True
    # Only the killed attempts were retried; one start and one outcome per attempt, one completion
    # per job, and each attempt's code ran exactly once.
    ledger = Ledger.read(run_log.runs())
    assert ledger.problems() == []
    assert ledger.attempts == len(jobs) + len(victims)
    # The killed workers were replaced: each node has its workers again.
    for victim in victims:
        assert not psutil.pid_exists(worker_pid(victim)) or psutil.Process(worker_pid(victim)).status() == "zombie"
    for node in nodes:
        wait_for(lambda: len(node.descendants()) == node.workers + 3, message=f"{node.name} to replace its worker")
    figures(
        f"{broker} broker: {len(jobs)} jobs on 2 nodes x 2 workers, {len(victims)} workers SIGKILLed mid-job; "
        f"{ledger.attempts} attempts, {ledger.event_rows} events, 1 completion per job"
    )


def test_a_killed_attempt_with_no_attempts_left_fails_for_good(cluster_nodes, run_log):
    cluster_nodes(1, workers=2)
    job = job_manager.submit_job("reliability.steps", {"steps": 30, "seconds": 0.1}, max_attempts=1)
    running = wait_for(lambda: running_jobs(at_least=1), timeout=30, message="the job to run")[0]

    os.kill(worker_pid(running), signal.SIGKILL)

    failed = wait_for(
        lambda: Job.objects.filter(id=job.id, status=JobStatus.FAILED).first(), message="the job to fail"
    )
    assert failed.error_class == "system"
    assert failed.finished_at is not None
    assert failed.last_error["hint"] == "Not retried: all 1 attempts used."
    assert Ledger.read(run_log.runs()).problems() == []


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_whole_node_lost_its_running_and_prefetched_jobs_are_taken_over(cluster_nodes, run_log, figures, broker):
    """Every process of a node killed at once (a machine lost): the jobs it was running are taken
    back by the other node's sweep; those its pusher had taken from the broker but not started
    are enqueued again once untouched for JOBS_REQUEUE_AFTER (600 s by default, 2 s here)."""
    lost, survivor = cluster_nodes(2, workers=2, broker=broker, JOBS_REQUEUE_AFTER="2")
    # 2 s each: none ends between the check below and the kill. node-a prefetches up to 7 of them.
    jobs = [job_manager.submit_job("reliability.steps", {"steps": 20, "seconds": 0.1}) for _ in range(10)]
    kill_once_it_runs_two_jobs(lost)

    wait_for(all_finished, timeout=90, message="every job to finish on the surviving node")
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    ledger = Ledger.read(run_log.runs())
    assert ledger.problems() == []
    taken_back = JobExecutionLog.objects.filter(error_details__type="jobs.errors.WorkerLostError").count()
    requeued = JobExecutionLog.objects.filter(event_type=EventType.QUEUED, details__requeued=True).count()
    assert taken_back == 2
    assert requeued >= 1  # what node-a had prefetched
    assert survivor.alive()
    figures(
        f"{broker} broker: node-a killed with 2 jobs running and more prefetched; {taken_back} taken back by the "
        f"sweep, {requeued} enqueued again; all {len(jobs)} jobs completed once, {ledger.attempts} attempts"
    )


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_node_lost_under_a_backlog_that_never_empties_has_its_prefetched_jobs_taken_over(
    cluster_nodes, run_log, figures, broker
):
    """As above, but the broker's queue stays full: the jobs node-a had prefetched are enqueued again
    once the surviving node runs jobs queued JOBS_REQUEUE_AFTER (2 s here) after them, while the
    backlog is still there, instead of after the backlog is gone."""
    lost, survivor = cluster_nodes(2, workers=2, broker=broker, JOBS_REQUEUE_AFTER="2")
    # 1 s each: more than both nodes prefetch (up to 7 each), so the queue never empties.
    first = [job_manager.submit_job("reliability.steps", {"steps": 10, "seconds": 0.1}) for _ in range(30)]
    kill_once_it_runs_two_jobs(lost)
    time.sleep(2.5)  # more backlog, queued later than the prefetched jobs by more than JOBS_REQUEUE_AFTER
    backlog = [job_manager.submit_job("reliability.steps", {"steps": 5, "seconds": 0.1}) for _ in range(40)]

    wait_for(all_finished, timeout=120, message="every job to finish on the surviving node")
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    assert Ledger.read(run_log.runs()).problems() == []
    requeues = JobExecutionLog.objects.filter(event_type=EventType.QUEUED, details__requeued=True)
    behind_the_backlog = [r for r in requeues if r.message.endswith("(workers already run attempts queued after it)")]
    assert behind_the_backlog
    assert {r.job_id for r in behind_the_backlog} <= {job.id for job in first}
    first_requeue = min(r.timestamp for r in requeues)
    assert {r.message for r in requeues if r.timestamp == first_requeue} == {
        "attempt 1 enqueued again: its task was lost (workers already run attempts queued after it)"
    }
    # Once the broker's queue is empty, the last backlog jobs the survivor prefetched may wait in it
    # longer than 2 s on loaded cores and be enqueued again too ("the broker's queue is empty"): a
    # harmless duplicate the claim refuses, which the ledger above would show if it ran twice.
    # A node holds at most 7 tasks taken from the broker (2 running, 5 waiting): with more backlog
    # jobs started after the first requeue, some were still in the broker's queue when it happened.
    started_after = Job.objects.filter(id__in=[job.id for job in backlog], started_at__gt=first_requeue).count()
    assert started_after > 7
    assert survivor.alive()
    figures(
        f"{broker} broker: node-a killed, then {len(backlog)} more jobs; its prefetched jobs first enqueued again "
        f"while {started_after} of those still waited; all {len(first) + len(backlog)} completed once"
    )


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_killed_workers_job_is_taken_back_while_every_other_worker_is_busy(cluster_nodes, broker):
    """The sweep does not wait for a free worker. With both workers on long jobs and the node's
    own queue full, its pusher blocks handing over the next task; a killed worker's job is still
    taken back once its heartbeat is STALE_AFTER (3 s here) old, while the other job runs on (a
    drill saw it wait for a long job to end: 116 s instead of about 35)."""
    cluster_nodes(1, workers=2, broker=broker)
    # 30 s each, more than the node takes at once (2 running, 4 in its queue, 1 in the pusher's hand).
    for _ in range(8):
        job_manager.submit_job("reliability.steps", {"steps": 300, "seconds": 0.1})
    victim, other = wait_for(lambda: running_jobs(at_least=2), timeout=30, message="both workers to run a job")[:2]

    os.kill(worker_pid(victim), signal.SIGKILL)
    # The reincarnated worker takes a queued task at once, so the pusher sweeps once, too early, and
    # blocks again on the next task.

    taken_back = wait_for(
        lambda: JobExecutionLog.objects.filter(job_id=victim.id, error_details__type="jobs.errors.WorkerLostError")
        .first(),
        timeout=15,
        message="the killed worker's job to be taken back",
    )
    assert Job.objects.get(id=other.id).status == JobStatus.RUNNING  # no worker came free meanwhile
    assert f"worker {victim.worker} stopped sending heartbeats" in taken_back.message
