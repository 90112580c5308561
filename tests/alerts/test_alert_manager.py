"""The design's AlertManager interface: awaitable methods, their _sync twins, and input checks."""

import pytest
from asgiref.sync import async_to_sync

from alerts.manager import alert_manager
from alerts.models import AlertHistory, DeliveryKind, NotificationDelivery

pytestmark = pytest.mark.django_db(transaction=True)

DATA = {"title": "imports are stuck", "message": "No import finished in 2 h.", "job_type": "imports"}


def test_the_awaitable_methods_do_what_their_sync_twins_do():
    alert = async_to_sync(alert_manager.process_alert)("job_failure", "critical", DATA)
    assert AlertHistory.objects.get().id == alert.id
    assert async_to_sync(alert_manager.escalate_alert)(alert.id) is True
    deliveries = async_to_sync(alert_manager.send_notification)(
        ["ops@example.com"], "Heads up", "critical", alert=alert, kind=DeliveryKind.REPEAT
    )
    assert [(d.recipient, d.headline, d.severity) for d in deliveries] == [("ops@example.com", "Heads up", "critical")]


def test_an_unknown_severity_is_refused_before_anything_is_written():
    with pytest.raises(ValueError, match="severity must be one of info, warning, error, critical, not 'fatal'"):
        alert_manager.process_alert_sync("job_failure", "fatal", DATA)
    assert not AlertHistory.objects.exists()


def test_alert_types_without_a_rule_are_raised_and_deduplicated_too():
    first = alert_manager.process_alert_sync("queue_backlog", "warning", {"title": "backlog", "check": "job_queue"})
    again = alert_manager.process_alert_sync("queue_backlog", "warning", {"title": "backlog", "check": "job_queue"})
    assert first.id == again.id
    assert AlertHistory.objects.get().state.occurrences == 2


def test_a_recipient_named_twice_in_the_routing_is_notified_once(alert_settings):
    alert_settings["RECIPIENTS"]["critical"] = ["ops@example.com", " ops@example.com ", "oncall@example.com"]

    alert = alert_manager.process_alert_sync("job_failure", "critical", DATA)

    recipients = NotificationDelivery.objects.filter(alert=alert).values_list("recipient", flat=True)
    assert sorted(recipients) == ["oncall@example.com", "ops@example.com"]


def test_a_rule_switched_off_raises_nothing_whoever_calls(alert_settings):
    alert_settings["RULES"] = {"job_failure": {"enabled": False}}

    assert alert_manager.process_alert_sync("job_failure", "error", DATA) is None
    assert not AlertHistory.objects.exists()
