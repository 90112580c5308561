"""Executors that misbehave, on a real `qcluster` node: one that raises inside its progress
callback, one that leaks memory, and ones that never return."""

import psutil
import pytest

from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from monitoring.models import EventType, JobExecutionLog
from tests.conftest import wait_for
from tests.reliability.ledger import Ledger

pytestmark = [pytest.mark.reliability, pytest.mark.worker]


def finished(job, timeout: float = 30) -> Job:
    return wait_for(
        lambda: Job.objects.filter(id=job.id, status__in=[JobStatus.COMPLETED, JobStatus.FAILED]).first(),
        timeout=timeout,
        message=f"{job.job_type} to finish",
    )


def error_of(job) -> dict:
    return JobExecutionLog.objects.get(job=job, event_type=EventType.ERROR).error_details


def timeline(job) -> list[str]:
    return list(JobExecutionLog.objects.filter(job=job).order_by("timestamp").values_list("event_type", flat=True))


def pid_of(job: Job) -> int:
    return int(job.worker.rsplit(":", 1)[1])


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def the_node_still_works(node) -> Job:
    """Its workers are all there (a dead one replaced) and it runs the next job, which it returns."""
    wait_for(lambda: len(node.descendants()) == node.workers + 3, message=f"{node.name} to have all its workers")
    after = finished(job_manager.submit_job("reliability.quick", {"n": 1}))
    assert after.status == JobStatus.COMPLETED
    return after


def test_a_progress_callback_that_raises_fails_its_job_and_nothing_else(cluster_nodes, run_log):
    [node] = cluster_nodes(1, workers=2)
    raises = job_manager.submit_job("reliability.progress_raises", {"how": "callback_raises"})
    bad_percent = job_manager.submit_job("reliability.progress_raises", {"how": "bad_percent"})
    odd_details = job_manager.submit_job("reliability.progress_raises", {"how": "unserialisable_details"})

    # The callback's own exception is the job's error, classified and kept with what came before.
    assert finished(raises).status == JobStatus.FAILED
    assert error_of(raises)["message"] == "progress callback: could not format the progress message"
    assert error_of(raises)["error_class"] == "data"
    assert timeline(raises) == ["queued", "started", "progress", "error"]  # 25 % was reported, then it raised
    # A progress report the runner cannot take is the executor's error, not the runner's.
    assert finished(bad_percent).status == JobStatus.FAILED
    assert error_of(bad_percent)["message"] == "invalid literal for int() with base 10: 'half-way'"
    # Details that are not JSON are summarised, and the job goes on.
    assert finished(odd_details).status == JobStatus.COMPLETED
    details = JobExecutionLog.objects.filter(job=odd_details, event_type=EventType.PROGRESS).first().details
    assert details["truncated"] is True and details["reason"].startswith("not JSON")
    assert Ledger.read(run_log.runs()).problems() == []
    the_node_still_works(node)


def test_a_leaking_worker_is_recycled_after_its_job(cluster_nodes, run_log):
    # Workers start at about 75 MiB; each leak job keeps 120 MiB more alive.
    [node] = cluster_nodes(1, workers=1, Q_MAX_RSS_KB=str(160 * 1024))
    first = job_manager.submit_job("reliability.leaks_memory", {"mb": 120})
    assert finished(first).status == JobStatus.COMPLETED
    second = job_manager.submit_job("reliability.leaks_memory", {"mb": 120})
    assert finished(second).status == JobStatus.COMPLETED

    first, second = Job.objects.get(id=first.id), Job.objects.get(id=second.id)
    # The leak did not accumulate: the second job ran in a fresh worker, the first one is gone.
    assert pid_of(first) != pid_of(second)
    assert first.result["leaked_mb"] == second.result["leaked_mb"] == 120
    assert gone(pid_of(first))
    # The monitoring saw it: memory at completion includes the leak.
    completed = JobExecutionLog.objects.get(job=first, event_type=EventType.COMPLETED)
    assert completed.memory_usage_mb >= 120
    assert Ledger.read(run_log.runs()).problems() == []
    the_node_still_works(node)


@pytest.mark.parametrize("how", ["spin", "sleep"])
def test_an_executor_that_never_returns_is_stopped_by_its_timeout(cluster_nodes, run_log, how):
    [node] = cluster_nodes(1, workers=1)
    job = job_manager.submit_job("reliability.never_returns", {"how": how})  # timeout: 1 s

    failed = finished(job, timeout=20)
    assert failed.status == JobStatus.FAILED
    error = error_of(job)
    assert (error["type"], error["message"]) == ("jobs.errors.JobTimeoutError", "attempt ran past its 1s timeout")
    assert failed.last_error["hint"] == "Not retried: all 1 attempts used."
    assert Ledger.read(run_log.runs()).problems() == []
    # Once the outcome is recorded the runner passes the timeout on, so django-q2 replaces the
    # worker (the interrupted executor may have left state behind) and the node carries on.
    assert pid_of(the_node_still_works(node)) != pid_of(failed)


def test_an_executor_that_swallows_its_timeout_is_killed_and_the_sweep_records_why(cluster_nodes, run_log):
    [node] = cluster_nodes(1, workers=1)
    job = job_manager.submit_job("reliability.never_returns", {"how": "swallow"})

    # django-q2's guard kills the worker 3 s past the timeout; the sweep then takes the job back.
    failed = finished(job, timeout=30)
    assert failed.status == JobStatus.FAILED
    error = error_of(job)
    assert error["type"] == "jobs.errors.JobTimeoutError"
    assert error["message"] == f"attempt 1 ran past its 1s timeout; worker {failed.worker} was stopped"
    assert gone(pid_of(failed))
    assert Ledger.read(run_log.runs()).problems() == []
    assert pid_of(the_node_still_works(node)) != pid_of(failed)  # a new worker took its place
