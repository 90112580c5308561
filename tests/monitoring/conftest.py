from datetime import timedelta
from types import SimpleNamespace

import psutil
import pytest
from django.utils import timezone

from jobs.manager import job_manager
from monitoring.models import EventType
from monitoring.retention import prune_monitoring
from tests.factories import JobExecutionLogFactory, JobFactory, JobRetryHistoryFactory


@pytest.fixture(autouse=True)
def quick_cpu_sample(settings):
    """A full health run samples the CPU for HEALTH_CPU_SAMPLE_SECONDS; not worth waiting for here."""
    settings.HEALTH = {**settings.HEALTH, "CPU_SAMPLE_SECONDS": 0}


@pytest.fixture
def machine(monkeypatch):
    """A host at 10 % CPU, 40 % memory and 50 % disk (psutil's answers); tests change what they need."""
    state = SimpleNamespace(cpu=10.0, memory=40.0, disk=50.0)
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: state.cpu)
    gib = 1024**3
    monkeypatch.setattr(
        psutil, "virtual_memory", lambda: SimpleNamespace(percent=state.memory, total=8 * gib, available=4 * gib)
    )
    monkeypatch.setattr(
        psutil, "disk_usage", lambda path: SimpleNamespace(percent=state.disk, total=100 * gib, free=50 * gib)
    )
    return state


@pytest.fixture
def retried_after_prune(settings):
    """Two failed jobs retried by hand: the first after retention pruned its events (failed 60
    days ago, events kept 45), the other failed yesterday. Returns (pruned, recent)."""
    settings.RETENTION_DAYS = {"job_execution_logs": 45, "system_health_metrics": 30}
    long_ago, lately = timezone.now() - timedelta(days=60), timezone.now() - timedelta(days=1)
    pruned = JobFactory(failed=True, attempts=1, started_at=long_ago)
    recent = JobFactory(failed=True, attempts=1, started_at=lately)
    for job, at in ((pruned, long_ago), (recent, lately)):
        JobRetryHistoryFactory(job=job, started_at=at, completed_at=at, status="failed")
        JobExecutionLogFactory(job=job, event_type=EventType.ERROR, timestamp=at)
    assert prune_monitoring()["job_execution_logs"] == 1
    for job in (pruned, recent):
        job_manager.retry_job_sync(job.id, by="alice")
    return pruned, recent
