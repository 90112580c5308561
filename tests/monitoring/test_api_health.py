"""GET /api/monitoring/health."""

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import time_machine
from django.db import OperationalError

from jobs.models import JobStatus
from monitoring.models import HealthStatus, MetricType
from tests.factories import JobFactory, health_result

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
HEALTH = "/api/monitoring/health"


checked = partial(health_result, now=NOW)


@pytest.fixture(autouse=True)
def at_three_am():
    with time_machine.travel(NOW, tick=False):
        yield


def test_before_the_first_check_health_is_unknown(client, viewer):
    client.force_login(viewer)

    response = client.get(HEALTH)

    assert response.status_code == 200
    assert response.json() == {
        "status": "unknown",
        "checked_at": None,
        "components": [],
        "stale": False,
        "no_worker": None,
        "workers": [],
    }


def test_each_components_latest_check_and_the_worst_status(client, viewer):
    checked("database.latency_ms", HealthStatus.CRITICAL, minutes_ago=2, value=1500)
    checked("database.latency_ms", HealthStatus.HEALTHY, minutes_ago=1, value=1.25)
    checked("ai_matching", HealthStatus.WARNING, minutes_ago=1, value=1800, metric_type=MetricType.API)
    client.force_login(viewer)

    body = client.get(HEALTH).json()

    assert body == {
        "status": "warning",
        "checked_at": "2026-11-29T02:59:00.000Z",
        "components": [
            {
                "metric_type": "api",
                "metric_name": "ai_matching",
                "host": None,
                "metric_value": 1800.0,
                "status": "warning",
                "details": {"message": "ai_matching is warning"},
                "timestamp": "2026-11-29T02:59:00.000Z",
                "stale": False,
            },
            {
                "metric_type": "database",
                "metric_name": "database.latency_ms",
                "host": None,
                "metric_value": 1.25,
                "status": "healthy",
                "details": {"message": "database.latency_ms is healthy"},
                "timestamp": "2026-11-29T02:59:00.000Z",
                "stale": False,
            },
        ],
        "stale": False,
        "no_worker": None,
        "workers": [],
    }


def test_one_critical_component_makes_the_whole_critical(client, viewer):
    checked("database.latency_ms", HealthStatus.HEALTHY, minutes_ago=1)
    checked("jobs.stale", HealthStatus.CRITICAL, minutes_ago=1, value=7, metric_type=MetricType.JOB_QUEUE)
    client.force_login(viewer)

    assert client.get(HEALTH).json()["status"] == "critical"


def test_when_the_checks_stopped_and_no_worker_is_seen_health_is_critical(client, viewer, settings):
    settings.HEALTH = {**settings.HEALTH, "STALE_AFTER_MINUTES": 3}
    checked("database.latency_ms", HealthStatus.HEALTHY, minutes_ago=10)
    checked("cluster.workers", HealthStatus.HEALTHY, minutes_ago=10, value=2, metric_type=MetricType.JOB_QUEUE)
    JobFactory(status=JobStatus.QUEUED, updated_at=NOW - timedelta(minutes=8))
    client.force_login(viewer)

    body = client.get(HEALTH).json()

    assert (body["status"], body["stale"]) == ("critical", True)  # the stored statuses say healthy
    assert body["no_worker"] == {
        "last_seen_at": "2026-11-29T02:50:00.000Z",
        "queued": 1,
        "oldest_queued_at": "2026-11-29T02:52:00.000Z",
    }
    workers = next(c for c in body["components"] if c["metric_name"] == "cluster.workers")
    assert (workers["status"], workers["stale"]) == ("unknown", True)


def test_checks_stopped_while_workers_are_busy_with_long_jobs_is_stale_not_dead(client, viewer, settings):
    settings.HEALTH = {**settings.HEALTH, "STALE_AFTER_MINUTES": 3}
    checked("database.latency_ms", HealthStatus.HEALTHY, minutes_ago=10)
    JobFactory(running=True, heartbeat_at=NOW - timedelta(seconds=5))
    client.force_login(viewer)

    body = client.get(HEALTH).json()

    assert (body["status"], body["stale"], body["no_worker"]) == ("healthy", True, None)


def test_each_hosts_resources_are_components_of_their_own(client, viewer):
    disk = partial(checked, "disk.percent", metric_type=MetricType.RESOURCE)
    disk(HealthStatus.CRITICAL, minutes_ago=2, value=97, host="node-a")
    disk(HealthStatus.HEALTHY, minutes_ago=1, value=50, host="node-b")  # each node samples its own
    checked("database.latency_ms", HealthStatus.HEALTHY, minutes_ago=1)  # the scheduled checks
    client.force_login(viewer)

    body = client.get(HEALTH).json()

    assert body["status"] == "critical"
    resources = [c for c in body["components"] if c["host"]]
    assert [(c["metric_name"], c["host"], c["status"], c["metric_value"]) for c in resources] == [
        ("disk.percent", "node-a", "critical", 97.0),
        ("disk.percent", "node-b", "healthy", 50.0),
    ]
    assert resources[0]["details"] == {"message": "disk.percent is critical on node-a", "host": "node-a"}


def test_queries_stay_flat_with_five_hosts(client, alice, bearer, django_assert_max_num_queries):
    for run in range(30):
        for name in ("cpu.percent", "memory.percent", "disk.percent"):
            checked(
                name, HealthStatus.HEALTHY, minutes_ago=run / 5, metric_type=MetricType.RESOURCE, host=f"node-{run % 5}"
            )
        checked("database.latency_ms", HealthStatus.HEALTHY, minutes_ago=run)
    headers = bearer(alice)

    # token lookup, its last_used_at, user and group permissions; the latest run, its rows; the hosts
    with django_assert_max_num_queries(7):
        response = client.get(HEALTH, headers=headers)

    assert len(response.json()["components"]) == 16  # 3 resources of each of the 5 hosts, and the database


def test_queries_stay_bounded_however_long_the_history(client, alice, bearer, django_assert_max_num_queries):
    for run in range(100):
        for name in ("database.latency_ms", "database.schema", "cpu.percent"):
            checked(name, HealthStatus.HEALTHY, minutes_ago=run)
    headers = bearer(alice)

    # token lookup, its last_used_at, user and group permissions; the latest run, its rows; the hosts
    with django_assert_max_num_queries(7):
        response = client.get(HEALTH, headers=headers)

    assert response.status_code == 200
    assert len(response.json()["components"]) == 3


def test_the_hosts_that_ran_jobs_lately_come_with_the_health(client, viewer):
    for _ in range(5):
        JobFactory(failed=True, worker="node-bad:7", finished_at=NOW - timedelta(minutes=3))
    JobFactory(running=True, worker="node-ok:1", heartbeat_at=NOW, updated_at=NOW)
    JobFactory(completed=True, worker="node-ok:2", finished_at=NOW - timedelta(minutes=2), updated_at=NOW)
    client.force_login(viewer)

    workers = client.get(HEALTH).json()["workers"]

    assert workers == [
        {
            "host": "node-bad",
            "processes": ["7"],
            "running": 0,
            "succeeded": 0,
            "failed": 5,
            "failure_share": 1.0,
            "others_failure_share": 0.0,
            "suspect": True,
            "last_seen": "2026-11-29T03:00:00.000Z",  # the rows were written at NOW
        },
        {
            "host": "node-ok",
            "processes": ["1", "2"],
            "running": 1,
            "succeeded": 1,
            "failed": 0,
            "failure_share": 0.0,
            "others_failure_share": 1.0,
            "suspect": False,
            "last_seen": "2026-11-29T03:00:00.000Z",
        },
    ]


def test_needs_credentials_and_the_health_permission(client, nobody, bearer):
    response = client.get(HEALTH)
    assert response.status_code == 401

    response = client.get(HEALTH, headers=bearer(nobody))
    assert response.status_code == 403
    assert response.json() == {"detail": "permission required: monitoring.view_systemhealthmetric", "errors": []}


def test_query_parameters_are_refused_not_ignored(client, viewer):
    client.force_login(viewer)

    response = client.get(HEALTH, {"component": "database"})

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "component", "message": "takes no query parameters"}]


def test_a_database_outage_is_503(client, viewer, monkeypatch):
    client.force_login(viewer)

    def unavailable(now):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("monitoring.api.current_health", unavailable)

    response = client.get(HEALTH)

    assert (response.status_code, response["Retry-After"]) == (503, "5")


def test_the_schema_declares_the_statuses_a_client_can_get(client, alice, bearer):
    """A client generated from the schema gets enums to switch on, "unknown" included (before the
    first check; the stale cluster.workers reading), not a free string documented in prose."""
    schemas = client.get("/api/openapi.json", headers=bearer(alice)).json()["components"]["schemas"]

    statuses = ["healthy", "warning", "critical", "unknown"]
    assert schemas["HealthOut"]["properties"]["status"]["enum"] == statuses
    assert schemas["HealthComponentOut"]["properties"]["status"]["enum"] == statuses


def test_the_hosts_failure_shares_are_rounded_as_the_other_ratios(client, viewer):
    # 1 of 3 is 0.3333 (to 4 decimals, as the metrics' success_rate), not 0.3333333333333333.
    JobFactory(failed=True, worker="node-a:1", finished_at=NOW - timedelta(minutes=3))
    for _ in range(2):
        JobFactory(completed=True, worker="node-a:1", finished_at=NOW - timedelta(minutes=3))
    for _ in range(2):
        JobFactory(failed=True, worker="node-b:1", finished_at=NOW - timedelta(minutes=3))
    JobFactory(completed=True, worker="node-b:1", finished_at=NOW - timedelta(minutes=3))
    client.force_login(viewer)

    workers = client.get(HEALTH).json()["workers"]

    assert [(w["host"], w["failure_share"], w["others_failure_share"]) for w in workers] == [
        ("node-a", 0.3333, 0.6667),
        ("node-b", 0.6667, 0.3333),
    ]


def test_a_node_gone_and_fewer_workers_than_expected_read_in_the_workers_component(
    client, viewer, no_cluster, settings
):
    from monitoring.health import health_service
    from tests.conftest import publish_cluster

    settings.HEALTH = {**settings.HEALTH, "SAMPLE_NODE_RESOURCES": True, "EXPECTED_WORKERS": 4}
    settings.PERIODIC_TASKS = {**settings.PERIODIC_TASKS, "run_health_checks": {"minutes": 1}}
    checked("disk.percent", HealthStatus.HEALTHY, minutes_ago=5, metric_type=MetricType.RESOURCE, host="node-b")
    publish_cluster(workers=2, host="node-a")
    health_service.run_health_checks_sync(resources=False)
    client.force_login(viewer)

    body = client.get(HEALTH).json()

    workers = next(c for c in body["components"] if c["metric_name"] == "cluster.workers")
    assert (workers["status"], workers["metric_value"], workers["host"]) == ("warning", 2, None)
    assert workers["details"]["message"] == (
        "2 of 4 expected workers alive, in 1 cluster on node-a; not seen since 02:55 UTC (5m ago): node-b"
    )
    assert workers["details"]["expected_workers"] == 4
    assert workers["details"]["gone_hosts"] == [{"host": "node-b", "last_seen_at": "2026-11-29T02:55:00+00:00"}]
    # node-b's last reading stays on its own until forgotten.
    disk = next(c for c in body["components"] if c["metric_name"] == "disk.percent")
    assert (disk["host"], disk["timestamp"]) == ("node-b", "2026-11-29T02:55:00.000Z")
