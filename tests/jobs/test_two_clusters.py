"""Two clusters' pushers both see the same due retry / stale job before either acts."""

import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

import tests.jobs.executors  # noqa: F401
from jobs import manager as manager_module
from jobs.manager import EnhancedJobManager, job_manager
from jobs.models import Job, JobStatus
from monitoring.controller import MonitoringController
from monitoring.models import EventType, JobExecutionLog

pytestmark = pytest.mark.django_db(transaction=True)


def run_both_past_their_read(monkeypatch, work):
    barrier = threading.Barrier(2, timeout=10)
    real_atomic = transaction.atomic

    def atomic_after_both_read(*args, **kwargs):
        if threading.current_thread().name.startswith("cluster-"):
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
        return real_atomic(*args, **kwargs)

    monkeypatch.setattr(manager_module.transaction, "atomic", atomic_after_both_read)
    results, errors = [], []

    def cluster():
        try:
            results.append(work(EnhancedJobManager(monitoring=MonitoringController())))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=cluster, name=f"cluster-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    return results


def test_a_due_retry_is_handed_over_once_by_two_pushers(monkeypatch):
    enqueued = []
    monkeypatch.setattr(manager_module, "enqueue_attempt", lambda *a, **k: enqueued.append(a))
    job = job_manager.submit_job("test.echo", {})
    Job.objects.filter(id=job.id).update(
        status=JobStatus.RETRYING, attempts=1, next_attempt_at=timezone.now() - timedelta(seconds=1), retry_delay=1
    )
    enqueued.clear()
    results = run_both_past_their_read(monkeypatch, lambda m: m.dispatch_due_retries())
    assert sorted(results) == [0, 1]
    assert enqueued == [(job.id, 2)]
    assert JobExecutionLog.objects.filter(job=job, event_type=EventType.RETRY).count() == 1


def test_a_stale_job_is_taken_back_once_by_two_sweeps(monkeypatch):
    job = job_manager.submit_job("test.echo", {})
    job_manager._claim(job.id, 1)
    later = timezone.now() + timedelta(minutes=5)
    run_both_past_their_read(monkeypatch, lambda m: m.recover_stale_jobs(now=later))
    job.refresh_from_db()
    assert job.status == JobStatus.RETRYING
    assert JobExecutionLog.objects.filter(job=job, event_type=EventType.ERROR).count() == 1
