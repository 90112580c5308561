"""Resource checks measure whichever node ran them; alerts must not flap between nodes."""

import pytest

from alerts.models import AlertHistory, DeliveryKind, NotificationDelivery
from monitoring.models import HealthStatus, MetricType
from monitoring.signals import health_checked
from tests.factories import SystemHealthMetricFactory

pytestmark = pytest.mark.django_db


def disk(host, status, value):
    row = SystemHealthMetricFactory(
        metric_type=MetricType.RESOURCE,
        metric_name="disk.percent",
        metric_value=value,
        status=status,
        details={"message": f"disk / {value} % full on {host}", "host": host},
    )
    health_checked.send(sender=None, results=[row], previous={})


def test_one_full_disk_on_one_node_is_one_alert_whichever_node_runs_the_check():
    # The scheduled check lands on node A, B, A, B, A: node A's disk stays 97 % full throughout.
    for host in ("node-a", "node-b", "node-a", "node-b", "node-a"):
        if host == "node-a":
            disk(host, HealthStatus.CRITICAL, 97)
        else:
            disk(host, HealthStatus.HEALTHY, 40)
    alerts = AlertHistory.objects.filter(alert_type="resource_utilization")
    new_alert_notices = NotificationDelivery.objects.filter(kind=DeliveryKind.ALERT).count()
    assert alerts.count() == 1, "node A's full disk was alerted, auto-resolved by node B's reading, alerted again..."
    assert alerts.get().resolved_at is None
    assert new_alert_notices == 2  # ops and on-call, told once
    assert alerts.get().state.occurrences == 3


def test_a_healthy_reading_of_the_same_host_still_clears_it():
    disk("node-a", HealthStatus.CRITICAL, 97)
    disk("node-a", HealthStatus.HEALTHY, 40)
    assert AlertHistory.objects.get().resolved_at is not None


def test_a_resource_alert_raised_before_fingerprints_named_the_host_is_cleared_by_a_healthy_reading():
    from alerts.manager import alert_manager

    legacy = alert_manager.process_alert_sync(
        "resource_utilization", "critical", {"title": "disk", "message": "97 %", "check": "resource/disk.percent"}
    )
    assert legacy.state.fingerprint == "resource_utilization:resource/disk.percent"
    disk("node-a", HealthStatus.HEALTHY, 40)
    legacy.refresh_from_db()
    assert legacy.resolved_at is not None
