"""System health and resource utilization rules, fed by the health service's health_checked signal."""

from datetime import UTC, datetime

import pytest
import time_machine

from alerts.models import AlertHistory, AlertType, DeliveryKind, DeliveryStatus, NotificationDelivery
from monitoring.models import HealthStatus, MetricType
from monitoring.signals import health_checked
from tests.factories import SystemHealthMetricFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def checked(*rows, previous=None):
    """What the health service does after storing its results."""
    health_checked.send(sender=None, results=list(rows), previous=previous or {})


def db_latency(status, value=1.5):
    return SystemHealthMetricFactory(
        metric_type=MetricType.DATABASE, metric_name="latency_ms", metric_value=value, status=status, timestamp=NOW
    )


def resource(name, value, status=HealthStatus.HEALTHY):
    return SystemHealthMetricFactory(
        metric_type=MetricType.RESOURCE, metric_name=name, metric_value=value, status=status
    )


def test_a_check_turning_warning_raises_a_warning_system_health_alert():
    checked(db_latency(HealthStatus.WARNING, 850), previous={("database", "latency_ms", None): "healthy"})
    alert = AlertHistory.objects.get()
    assert (alert.alert_type, alert.severity) == (AlertType.SYSTEM_HEALTH, "warning")
    assert alert.title == "Health check database/latency_ms is warning"
    assert alert.message == "database/latency_ms = 850 (warning). Previously healthy."
    assert alert.job_id is None
    assert alert.state.fingerprint == "system_health:database/latency_ms"


def test_what_the_check_saw_is_a_sentence_of_its_own_before_the_previous_status():
    rate = SystemHealthMetricFactory(
        metric_type=MetricType.JOB_QUEUE,
        metric_name="jobs.failure_rate_pct",
        metric_value=51.2,
        status=HealthStatus.CRITICAL,
        details={"message": "21 of 41 attempts failed in the last 15 min"},
    )
    checked(rate, previous={("job_queue", "jobs.failure_rate_pct", None): "warning"})
    assert AlertHistory.objects.get().message == (
        "job_queue/jobs.failure_rate_pct = 51.2 (critical). 21 of 41 attempts failed in the last 15 min. "
        "Previously warning."
    )


def test_a_critical_check_raises_a_critical_alert_and_healthy_checks_raise_nothing():
    api_down = SystemHealthMetricFactory(
        metric_type=MetricType.API,
        metric_name="ai_matching",
        metric_value=0,
        status=HealthStatus.CRITICAL,
        details={"error": "connection refused"},
    )
    checked(db_latency(HealthStatus.HEALTHY), api_down)
    alert = AlertHistory.objects.get()
    assert (alert.severity, alert.title) == ("critical", "Health check api/ai_matching is critical")
    assert "connection refused" in alert.message


def test_every_check_while_still_bad_is_counted_into_the_same_alert():
    for _ in range(3):
        checked(db_latency(HealthStatus.WARNING, 900))
    assert AlertHistory.objects.get().state.occurrences == 3


def test_a_check_going_from_warning_to_critical_retitles_its_alert():
    """A drill: the alert read "… is warning" under a critical badge (and in the mail saying the
    severity was raised: its body is rendered from the alert)."""
    checked(db_latency(HealthStatus.WARNING, 850))
    checked(db_latency(HealthStatus.CRITICAL, 1500))
    alert = AlertHistory.objects.get()
    assert (alert.severity, alert.title) == ("critical", "Health check database/latency_ms is critical")
    assert alert.message == "database/latency_ms = 1500 (critical)."
    assert alert.deliveries.filter(kind=DeliveryKind.SEVERITY_RAISED).exists()
    # Better again is just another occurrence: the alert stays as bad as it got.
    checked(db_latency(HealthStatus.WARNING, 900))
    alert.refresh_from_db()
    assert (alert.severity, alert.title) == ("critical", "Health check database/latency_ms is critical")


def test_a_check_back_to_healthy_resolves_its_alert_and_says_so():
    with time_machine.travel(NOW, tick=False):
        checked(db_latency(HealthStatus.CRITICAL, 5000))
        alert = AlertHistory.objects.get()
        alert.deliveries.update(status=DeliveryStatus.SENT)  # ops were told
        checked(db_latency(HealthStatus.HEALTHY, 2.0), previous={("database", "latency_ms", None): "critical"})

    alert.refresh_from_db()
    assert alert.resolved_at == NOW
    assert alert.state.resolved_by == ""
    assert alert.state.resolution_reason == (
        "Auto-resolved: database/latency_ms = 2 (healthy) at 2026-11-29 03:00:00 UTC."
    )
    resolved = NotificationDelivery.objects.filter(alert=alert, kind=DeliveryKind.RESOLVED)
    assert list(resolved.values_list("headline", "recipient")) == [
        ("Resolved", "ops@example.com"),
        ("Resolved", "oncall@example.com"),
    ]


def test_a_check_that_clears_while_the_alert_is_being_delivered_is_announced_too():
    checked(db_latency(HealthStatus.CRITICAL, 5000))
    alert = AlertHistory.objects.get()
    NotificationDelivery.objects.filter(alert=alert).update(status=DeliveryStatus.SENDING)  # a worker sends it now

    checked(db_latency(HealthStatus.HEALTHY, 2.0), previous={("database", "latency_ms", None): "critical"})

    assert NotificationDelivery.objects.filter(alert=alert, kind=DeliveryKind.RESOLVED).count() == 2


def test_a_healthy_check_without_an_open_alert_changes_nothing():
    checked(db_latency(HealthStatus.HEALTHY))
    assert not AlertHistory.objects.exists() and not NotificationDelivery.objects.exists()


def test_resource_checks_alert_by_their_own_status():
    """CPU, memory and disk are graded by the health check's thresholds (HEALTH_*_PCT_*)."""
    checked(
        resource("cpu_percent", 80),
        resource("memory_percent", 90, status=HealthStatus.WARNING),
        resource("disk_percent", 97, status=HealthStatus.CRITICAL),
    )
    alerts = dict(AlertHistory.objects.values_list("title", "severity"))
    assert alerts == {
        "Resource utilization resource/memory_percent is warning": "warning",
        "Resource utilization resource/disk_percent is critical": "critical",
    }
    assert set(AlertHistory.objects.values_list("alert_type", flat=True)) == {AlertType.RESOURCE_UTILIZATION}


def test_resource_alert_resolves_once_its_check_is_healthy_again():
    checked(resource("disk_percent", 97, status=HealthStatus.CRITICAL))
    checked(resource("disk_percent", 60))
    assert AlertHistory.objects.get().resolved_at is not None


def test_switched_off_rules_raise_nothing(alert_settings):
    alert_settings["RULES"] = {"system_health": {"enabled": False}, "resource_utilization": {"enabled": False}}
    checked(db_latency(HealthStatus.CRITICAL), resource("disk_percent", 99, HealthStatus.CRITICAL))
    assert not AlertHistory.objects.exists()


def test_a_status_can_be_mapped_to_another_severity_or_to_none(alert_settings):
    alert_settings["RULES"] = {"system_health": {"severity_by_status": {"warning": None, "critical": "error"}}}
    checked(db_latency(HealthStatus.WARNING))
    assert not AlertHistory.objects.exists()
    checked(db_latency(HealthStatus.CRITICAL))
    assert AlertHistory.objects.get().severity == "error"
