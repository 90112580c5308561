"""latest_health and health_histories: what the API, the dashboard and /metrics read."""

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from monitoring.health import health_histories, latest_health
from tests.factories import health_result

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


metric = partial(health_result, now=NOW)


def test_nothing_checked_yet_is_unknown():
    assert latest_health() == {"status": "unknown", "checked_at": None, "components": []}


def test_the_latest_row_of_each_component_and_the_worst_status(django_assert_max_num_queries):
    metric("database.latency_ms", "critical", minutes_ago=2, value=1500)
    metric("database.latency_ms", "healthy", minutes_ago=1, value=1.25)
    metric("cpu.percent", "critical", minutes_ago=3, metric_type="resource")
    metric("cpu.percent", "warning", minutes_ago=1, value=88, metric_type="resource")

    with django_assert_max_num_queries(2):
        health = latest_health()

    assert health["status"] == "warning"
    assert health["checked_at"] == NOW - timedelta(minutes=1)
    assert health["components"] == [
        {
            "metric_type": "database",
            "metric_name": "database.latency_ms",
            "host": None,
            "metric_value": 1.25,
            "status": "healthy",
            "details": {"message": "database.latency_ms is healthy"},
            "timestamp": NOW - timedelta(minutes=1),
        },
        {
            "metric_type": "resource",
            "metric_name": "cpu.percent",
            "host": None,
            "metric_value": 88.0,
            "status": "warning",
            "details": {"message": "cpu.percent is warning"},
            "timestamp": NOW - timedelta(minutes=1),
        },
    ]


def test_a_component_that_stopped_reporting_is_forgotten(settings):
    settings.HEALTH = {**settings.HEALTH, "FORGET_AFTER_MINUTES": 15}
    metric("old-webhook", "critical", minutes_ago=20, metric_type="api")  # removed from the settings since
    metric("ai_matching", "warning", minutes_ago=14, metric_type="api")  # missed a run: still shown
    metric("database.latency_ms", "healthy", minutes_ago=0)

    health = latest_health()
    assert [c["metric_name"] for c in health["components"]] == ["ai_matching", "database.latency_ms"]
    assert health["status"] == "warning"


def test_when_checks_stop_running_the_last_results_stay_with_their_time():
    metric("database.latency_ms", "healthy", minutes_ago=600)
    health = latest_health()
    assert health["checked_at"] == NOW - timedelta(minutes=600)
    assert health["status"] == "healthy"


def test_health_histories_are_each_components_oldest_first():
    for minutes_ago in (30, 10, 20):
        metric("cpu.percent", "healthy", minutes_ago=minutes_ago, value=minutes_ago, metric_type="resource")
        metric("cpu.percent", "healthy", minutes_ago=minutes_ago, value=minutes_ago + 1, metric_type="api")
    metric("cpu.percent", "healthy", minutes_ago=90, metric_type="resource")  # before `since`
    metric("memory.percent", "healthy", minutes_ago=5, value=5, metric_type="resource")

    def values(histories):
        return {key: [float(row.metric_value) for row in rows] for key, rows in histories.items()}

    since = NOW - timedelta(hours=1)
    assert values(health_histories(since=since)) == {
        ("api", "cpu.percent", None): [31, 21, 11],  # the same name under another type is another component
        ("resource", "cpu.percent", None): [30, 20, 10],
        ("resource", "memory.percent", None): [5],
    }
    assert values(health_histories(since=since, limit=2)) == {  # the latest 2 of each
        ("api", "cpu.percent", None): [21, 11],
        ("resource", "cpu.percent", None): [20, 10],
        ("resource", "memory.percent", None): [5],
    }


# --- several worker hosts: the checks run on whichever node picks them up --------------------


disk = partial(metric, "disk.percent", metric_type="resource")


def test_each_hosts_resources_are_components_of_their_own_and_the_worst_decides(django_assert_max_num_queries):
    disk("critical", minutes_ago=2, value=97, host="node-a")  # node-a's disk is full...
    disk("healthy", minutes_ago=1, value=50, host="node-b")  # ... and the next run landed on node-b
    disk("warning", minutes_ago=0, value=88, host="node-c")
    metric("database.latency_ms", "healthy", minutes_ago=0)

    with django_assert_max_num_queries(2):
        health = latest_health()

    resources = [(c["host"], c["status"], c["metric_value"]) for c in health["components"] if c["host"]]
    assert resources == [("node-a", "critical", 97.0), ("node-b", "healthy", 50.0), ("node-c", "warning", 88.0)]
    assert health["status"] == "critical", "node-b's healthy disk replaced node-a's full one"
    assert [c["host"] for c in health["components"] if c["metric_name"] == "database.latency_ms"] == [None]


def test_a_host_that_stopped_reporting_is_forgotten(settings):
    settings.HEALTH = {**settings.HEALTH, "FORGET_AFTER_MINUTES": 15}
    disk("critical", minutes_ago=20, value=99, host="node-gone")  # taken out of the cluster since
    disk("warning", minutes_ago=14, value=90, host="node-a")  # it last sampled 14 min before the latest run
    disk("healthy", minutes_ago=0, value=50, host="node-b")
    metric("database.latency_ms", "healthy", minutes_ago=0)

    health = latest_health()
    resources = [(c["host"], c["status"]) for c in health["components"] if c["host"]]
    assert resources == [("node-a", "warning"), ("node-b", "healthy")]
    assert health["status"] == "warning"


def test_checked_at_is_when_the_checks_ran_not_when_a_node_last_sampled_its_resources():
    """Every node samples its own resources every minute, the scheduled checks run on one: the
    nodes' samples neither say the checks ran nor hide that they stopped."""
    metric("database.latency_ms", "healthy", minutes_ago=5)  # the checks stopped 5 min ago
    disk("healthy", minutes_ago=0, value=50, host="node-a")  # the nodes sample on

    health = latest_health()
    assert health["checked_at"] == NOW - timedelta(minutes=5)
    assert [(c["host"], c["timestamp"]) for c in health["components"] if c["host"]] == [("node-a", NOW)]


def test_health_histories_are_each_hosts_own():
    for minutes_ago in (3, 2, 1):
        host = "node-a" if minutes_ago % 2 else "node-b"  # the runs alternate between two nodes
        disk("healthy", minutes_ago=minutes_ago, value=minutes_ago * 10, host=host)

    histories = health_histories(since=NOW - timedelta(hours=1))
    assert {key: [float(row.metric_value) for row in rows] for key, rows in histories.items()} == {
        ("resource", "disk.percent", "node-a"): [30, 10],
        ("resource", "disk.percent", "node-b"): [20],
    }
