"""Paging that is broken is itself a health reading (job_queue/alerts.deliveries_failed), so the
health page says so and, through the health rules, the other channels and recipients hear it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts.manager import alert_manager
from alerts.models import AlertHistory, DeliveryStatus, NotificationDelivery
from monitoring.health import health_service
from tests.alerts.backends import FlakyEmailBackend

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def deliveries_component(at):
    with time_machine.travel(at, tick=False):
        result = health_service.check_job_queue_sync()
    return next(c for c in result["components"] if c["metric_name"] == "alerts.deliveries_failed")


def database_down():
    alert_manager.process_alert_sync("system_health", "critical", {"title": "database down", "check": "database"})


def test_notifications_that_could_not_be_delivered_make_the_health_check_say_paging_is_broken(
    deliveries_run, settings, no_cluster
):
    """Before: the check did not exist; a refused email left the alert unpaged, said on its own page only."""
    assert deliveries_component(NOW)["status"] == "healthy"

    settings.EMAIL_BACKEND = "tests.alerts.backends.RefusingEmailBackend"
    with time_machine.travel(NOW, tick=False), deliveries_run():
        database_down()  # critical: ops and on-call, both refused
    assert list(NotificationDelivery.objects.values_list("status", flat=True)) == [DeliveryStatus.FAILED] * 2

    reading = deliveries_component(NOW + timedelta(minutes=1))
    assert (reading["metric_value"], reading["status"]) == (2, "warning")
    assert reading["details"]["channels"] == {"email": 2}
    assert reading["details"]["message"].startswith(
        "2 alert notifications could not be delivered in the last 15 min (email 2): nobody was told of those"
    )
    # The errors stay on the alerts' pages: a refused recipient's address is not for every reader of health.
    assert "User unknown" not in reading["details"]["message"]
    # Out of the window, it is history (the deliveries stay in the log).
    assert deliveries_component(NOW + timedelta(minutes=16))["status"] == "healthy"


def test_a_delivery_still_being_retried_is_not_counted(deliveries_run, settings, monkeypatch, no_cluster):
    settings.EMAIL_BACKEND = "tests.alerts.backends.FlakyEmailBackend"
    monkeypatch.setattr(FlakyEmailBackend, "failures", 10)  # the server keeps going away
    monkeypatch.setattr(FlakyEmailBackend, "calls", 0)
    with time_machine.travel(NOW, tick=False), deliveries_run():
        database_down()
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PENDING}
    assert deliveries_component(NOW + timedelta(minutes=1))["metric_value"] == 0
    assert AlertHistory.objects.get().notification_sent is False
