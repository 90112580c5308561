import uuid
from types import SimpleNamespace

import psutil
import pytest
from django.core.cache import caches


@pytest.fixture(autouse=True)
def quick_cpu_sample(settings):
    """A full health run samples the CPU for HEALTH_CPU_SAMPLE_SECONDS; not worth waiting for here."""
    settings.HEALTH = {**settings.HEALTH, "CPU_SAMPLE_SECONDS": 0}


@pytest.fixture
def no_cluster():
    """Forget any django-q2 cluster status a previous test's cluster left in the shared cache."""
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf

    from jobs.queue import shared_broker

    broker = shared_broker()
    if isinstance(broker, Redis):  # REDIS_URL set: cluster statuses are Redis keys
        for key in broker.connection.keys(f"{Conf.Q_STAT}:*"):
            broker.connection.delete(key)
    else:
        caches[Conf.CACHE].delete(Conf.Q_STAT)


def publish_cluster(*, workers: int, status: str = "Idle", host: str = "node-1"):
    """What a running cluster's monitor writes in the shared cache every few seconds."""
    from django_q.conf import Conf
    from django_q.signing import SignedPackage
    from django_q.status import Stat, Status

    from jobs.queue import shared_broker

    stat = Status(pid=4242, cluster_id=uuid.uuid4())
    # django-q2's statuses are lazy translations, as the real monitor stores them.
    status = {"Idle": Conf.IDLE, "Working": Conf.WORKING, "Stopping": Conf.STOPPING}[status]
    stat.workers, stat.status, stat.host = list(range(1000, 1000 + workers)), status, host
    shared_broker().set_stat(Stat.get_key(stat.cluster_id), SignedPackage.dumps(stat, True), 3)


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
