"""GET /api/monitoring/health."""

from datetime import UTC, datetime
from functools import partial

import pytest
from django.db import OperationalError

from monitoring.models import HealthStatus, MetricType
from tests.factories import health_result

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
HEALTH = "/api/monitoring/health"


checked = partial(health_result, now=NOW)


def test_before_the_first_check_health_is_unknown(client, viewer):
    client.force_login(viewer)

    response = client.get(HEALTH)

    assert response.status_code == 200
    assert response.json() == {"status": "unknown", "checked_at": None, "components": []}


def test_each_components_latest_check_and_the_worst_status(client, viewer):
    checked("database.latency_ms", HealthStatus.CRITICAL, minutes_ago=2, value=1500)
    checked("database.latency_ms", HealthStatus.HEALTHY, minutes_ago=1, value=1.25)
    checked("ai_matching", HealthStatus.WARNING, minutes_ago=1, value=1800, metric_type=MetricType.API)
    client.force_login(viewer)

    body = client.get(HEALTH).json()

    assert body == {
        "status": "warning",
        "checked_at": "2026-11-29T02:59:00Z",
        "components": [
            {
                "metric_type": "api",
                "metric_name": "ai_matching",
                "metric_value": 1800.0,
                "status": "warning",
                "details": {"message": "ai_matching is warning"},
                "timestamp": "2026-11-29T02:59:00Z",
            },
            {
                "metric_type": "database",
                "metric_name": "database.latency_ms",
                "metric_value": 1.25,
                "status": "healthy",
                "details": {"message": "database.latency_ms is healthy"},
                "timestamp": "2026-11-29T02:59:00Z",
            },
        ],
    }


def test_one_critical_component_makes_the_whole_critical(client, viewer):
    checked("database.latency_ms", HealthStatus.HEALTHY, minutes_ago=1)
    checked("jobs.stale", HealthStatus.CRITICAL, minutes_ago=1, value=7, metric_type=MetricType.JOB_QUEUE)
    client.force_login(viewer)

    assert client.get(HEALTH).json()["status"] == "critical"


def test_queries_stay_bounded_however_long_the_history(client, alice, bearer, django_assert_max_num_queries):
    for run in range(100):
        for name in ("database.latency_ms", "database.schema", "cpu.percent"):
            checked(name, HealthStatus.HEALTHY, minutes_ago=run)
    headers = bearer(alice)

    # token lookup, its last_used_at, user and group permissions; the latest run, its rows
    with django_assert_max_num_queries(6):
        response = client.get(HEALTH, headers=headers)

    assert response.status_code == 200
    assert len(response.json()["components"]) == 3


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

    def unavailable():
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("monitoring.api.latest_health", unavailable)

    response = client.get(HEALTH)

    assert (response.status_code, response["Retry-After"]) == (503, "5")
