import time
import uuid

import pytest
from django.core.cache import caches
from django.db import connection

from jobs.testing import running_cluster
from tests.factories import UserFactory


def wait_for(condition, timeout: float = 15.0, interval: float = 0.05, message: str = ""):
    """Poll `condition` until it returns something truthy (waiting on an outcome, not on time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


@pytest.fixture
def q_cluster(transactional_db, fast_jobs):
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def fast_jobs(settings):
    """Job timings shrunk so real workers show retries, heartbeats and sweeps in a second or two."""
    settings.JOBS = {
        **settings.JOBS,
        "RETRY": {"max_attempts": 3, "base_delay": 0.1, "max_delay": 2.0},
        "PROGRESS_INTERVAL": 0.0,
        "HEARTBEAT_INTERVAL": 0.2,
        "STALE_AFTER": 1.5,
        "DISPATCH_INTERVAL": 0.1,
        "SWEEP_INTERVAL": 0.2,
    }
    return settings.JOBS


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def postgres_only(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://…); this run is on SQLite")


@pytest.fixture
def alice(db):
    """An operator allowed to see and act on everything."""
    return UserFactory(
        username="alice",
        permissions=[
            "jobs.view_job",
            "jobs.add_job",
            "jobs.change_job",
            "alerts.view_alerthistory",
            "alerts.change_alerthistory",
            "monitoring.view_jobexecutionlog",
            "monitoring.view_systemhealthmetric",
        ],
    )


@pytest.fixture
def viewer(db):
    """May look, not act."""
    return UserFactory(
        username="victor",
        permissions=[
            "jobs.view_job",
            "alerts.view_alerthistory",
            "monitoring.view_jobexecutionlog",
            "monitoring.view_systemhealthmetric",
        ],
    )


@pytest.fixture
def nobody(db):
    """Logged in, but with no permission at all."""
    return UserFactory(username="nobody")


@pytest.fixture
def bearer(db):
    """bearer(user) -> request headers that authenticate as `user` with a new API token."""
    from monitoring.tokens import api_token_create

    def headers_for(user, name: str = "tests") -> dict:
        _, raw = api_token_create(user=user, name=name)
        return {"Authorization": f"Bearer {raw}"}

    return headers_for


@pytest.fixture
def no_cluster():
    """Forget any django-q2 cluster status a previous test's cluster left in the shared cache."""
    forget_clusters()


def forget_clusters():
    """Every cluster status in the shared cache gone, as if each had expired."""
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
