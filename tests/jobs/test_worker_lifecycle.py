"""The whole lifecycle through real django-q2 clusters (separate processes) on the test database."""

import os
import signal
from types import SimpleNamespace

import psutil
import pytest
from django.db import connection

from jobs import clock
from jobs.manager import job_manager
from jobs.models import Job, JobRetryHistory, JobStatus
from monitoring.models import EventType, JobExecutionLog, MetricType, SystemHealthMetric
from tests.conftest import running_cluster, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["orm", "redis"])
def cluster(request, fast_jobs, monkeypatch):
    """A running cluster on each broker we support."""
    from django_q.conf import Conf

    import jobs.queue

    if request.param == "redis":
        url = os.environ.get("REDIS_TEST_URL")
        if not url:
            pytest.skip("set REDIS_TEST_URL=redis://… to run the lifecycle on the Redis broker too")
        monkeypatch.setattr(Conf, "BROKER_CLASS", "jobs.brokers.RedisBroker")
        monkeypatch.setattr(Conf, "REDIS", url)
    monkeypatch.setattr(jobs.queue, "_broker", None)
    if request.param == "redis":
        # A Redis in use before, as in any deployment: a new one looks like one that lost its data,
        # and the first sweep would enqueue a job submitted before it once more.
        jobs.queue.shared_broker().tasks_lost_before(clock.now())
    with running_cluster(workers=2) as cluster:
        yield cluster
    broker = jobs.queue.shared_broker()
    broker.purge_queue()
    if request.param == "redis":
        broker.connection.delete(broker.marker_key)


def job_state(job_id):
    return Job.objects.get(id=job_id)


def timeline(job_id):
    return list(
        JobExecutionLog.objects.filter(job_id=job_id).order_by("timestamp").values_list("event_type", flat=True)
    )


def wait_for_status(job_id, *statuses, timeout=20):
    return wait_for(
        lambda: job_state(job_id).status in statuses and job_state(job_id),
        timeout=timeout,
        message=f"job {job_id} to be {'/'.join(statuses)}",
    )


def test_a_job_runs_reports_progress_and_completes(cluster):
    job = job_manager.submit_job("demo.sleep", {"seconds": 0.3, "steps": 3})
    done = wait_for_status(job.id, JobStatus.COMPLETED)
    assert done.result == {"slept_seconds": 0.3, "steps": 3}
    assert timeline(job.id) == ["queued", "started", "progress", "progress", "progress", "completed"]


def test_a_transient_failure_is_retried_after_its_delay_until_it_succeeds(cluster):
    job = job_manager.submit_job("demo.fail", {"error_class": "transient", "fail_times": 2})
    wait_for_status(job.id, JobStatus.COMPLETED)

    assert timeline(job.id) == [
        "queued",
        *["started", "progress", "error", "retry"] * 2,
        "started",
        "progress",
        "completed",
    ]
    history = list(JobRetryHistory.objects.filter(job=job).values_list("attempt_number", "status"))
    assert history == [(1, "failed"), (2, "failed"), (3, "success")]
    retries = JobExecutionLog.objects.filter(job=job, event_type=EventType.RETRY).order_by("timestamp")
    for retry, base in zip(retries, [0.2, 0.4]):  # base_delay 0.1 s * 2**attempt
        planned, waited = retry.details["planned_delay_s"], retry.details["waited_s"]
        assert base * 1.1 <= planned <= base * 1.3
        assert planned <= waited < planned + 2.0  # never early, and promptly after


def test_a_data_error_is_not_retried(cluster):
    job = job_manager.submit_job("demo.fail", {"error_class": "data", "fail_times": 1})
    failed = wait_for_status(job.id, JobStatus.FAILED)
    assert failed.attempts == 1 and failed.error_class == "data"
    assert timeline(job.id) == ["queued", "started", "progress", "error"]


def test_cancelling_a_running_job_stops_it(cluster):
    job = job_manager.submit_job("demo.sleep", {"seconds": 60, "steps": 600})
    wait_for(lambda: job_state(job.id).progress > 0, message="the job to make progress")
    job_manager.cancel_job_sync(job.id, by="alice")
    cancelled = wait_for_status(job.id, JobStatus.CANCELLED, timeout=10)
    assert cancelled.progress < 100
    assert timeline(job.id)[-2:] == ["cancel_requested", "cancelled"]
    assert JobRetryHistory.objects.get(job=job).status == "cancelled"


def test_a_paused_job_type_starts_nothing_until_resumed_then_each_job_runs_once(cluster):
    """The real workers hold the pause: jobs submitted while it holds wait queued; an attempt
    already running finishes; after the resume each job (of both paused types) runs exactly once."""
    import time

    running = job_manager.submit_job("demo.sleep", {"seconds": 1, "steps": 10})
    wait_for(lambda: job_state(running.id).progress > 0, message="the job to run")
    job_manager.pause_job_type_sync("demo.sleep", by="alice")
    job_manager.pause_job_type_sync("demo.fail", by="alice")
    failing_once = job_manager.submit_job("demo.fail", {"error_class": "transient", "fail_times": 1})
    held = [job_manager.submit_job("demo.sleep", {"seconds": 0.1, "steps": 1}) for _ in range(3)]

    wait_for_status(running.id, JobStatus.COMPLETED)  # already running: not stopped by the pause
    time.sleep(2)  # ample for a worker to take them, were they not held (tasks poll every 0.2 s)
    assert {job_state(job.id).status for job in [*held, failing_once]} == {JobStatus.QUEUED}
    waiting = [job.id for job in [*held, failing_once]]
    assert not JobExecutionLog.objects.filter(job_id__in=waiting, event_type="started").exists()

    for job_type in ("demo.sleep", "demo.fail"):
        job_manager.resume_job_type_sync(job_type, by="alice")
    for job in [*held, failing_once]:
        wait_for_status(job.id, JobStatus.COMPLETED)
        assert timeline(job.id).count("completed") == 1
    assert [job_state(job.id).attempts for job in held] == [1, 1, 1]


def test_a_worker_killed_mid_job_is_detected_and_the_job_retried(cluster):
    job = job_manager.submit_job("demo.sleep", {"seconds": 60, "steps": 600})
    running = wait_for(lambda: job_state(job.id).progress > 0 and job_state(job.id), message="the job to run")
    worker_pid = int(running.worker.rsplit(":", 1)[1])

    os.kill(worker_pid, signal.SIGKILL)

    wait_for(lambda: job_state(job.id).attempts == 2, message="attempt 2 to start after the sweep")
    first = JobRetryHistory.objects.get(job=job, attempt_number=1)
    assert first.status == "failed"
    assert f"worker {running.worker} stopped sending heartbeats" in first.error_message
    error = JobExecutionLog.objects.get(job=job, event_type=EventType.ERROR)
    assert error.error_details["error_class"] == "system"
    assert error.error_details["type"] == "jobs.errors.WorkerLostError"
    # One start and one outcome for attempt 1: nothing ran or was recorded twice.
    assert [e for e in timeline(job.id) if e in ("started", "error", "completed")][:2] == ["started", "error"]
    job_manager.cancel_job_sync(job.id)
    wait_for_status(job.id, JobStatus.CANCELLED)


@pytest.fixture
def sampling(settings, monkeypatch):
    """Node sampling on (off in tests/settings.py), of a machine at 10 % CPU, 40 % memory, 50 % disk."""
    settings.HEALTH = {**settings.HEALTH, "SAMPLE_NODE_RESOURCES": True}
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: 10.0)
    monkeypatch.setattr(
        psutil, "virtual_memory", lambda: SimpleNamespace(percent=40.0, total=8 << 30, available=4 << 30)
    )
    monkeypatch.setattr(
        psutil, "disk_usage", lambda path: SimpleNamespace(percent=50.0, total=100 << 30, free=50 << 30)
    )


def test_a_running_node_samples_its_own_resources_without_the_scheduled_checks(sampling, cluster, settings):
    # No scheduled run here: the node's pusher samples as soon as it starts (monitoring.sampler).
    sampled = wait_for(
        lambda: sorted(
            SystemHealthMetric.objects.filter(
                metric_type=MetricType.RESOURCE, details__host=settings.WORKER_HOSTNAME
            ).values_list("metric_name", flat=True)
        ),
        message="the node to sample its resources",
    )
    assert sampled == ["cpu.percent", "disk.percent", "memory.percent"]
    job = job_manager.submit_job("demo.sleep", {"seconds": 0.1, "steps": 1})
    wait_for_status(job.id, JobStatus.COMPLETED)  # and jobs run beside it


def test_a_queued_job_cancelled_before_a_worker_picks_it_never_starts(transactional_db, fast_jobs, monkeypatch):
    import jobs.queue

    monkeypatch.setattr(jobs.queue, "_broker", None)
    job = job_manager.submit_job("demo.sleep", {"seconds": 0.1, "steps": 1})
    job_manager.cancel_job_sync(job.id)
    other = job_manager.submit_job("demo.sleep", {"seconds": 0.1, "steps": 1})
    with running_cluster(workers=1):
        wait_for_status(other.id, JobStatus.COMPLETED)
    # The cancelled job's task was delivered (before the other one) and refused.
    assert job_state(job.id).status == JobStatus.CANCELLED
    assert timeline(job.id) == ["queued", "cancelled"]
    connection.close()
