"""A check that fails and recovers every minute pages once or twice, not 30 times an hour.

ALERTS["FLAP_MINUTES"] is 15 here (tests/alerts/conftest.py). Time is set explicitly per check run.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from alerts.manager import alert_manager
from alerts.models import AlertHistory, DeliveryKind, DeliveryStatus, NotificationDelivery
from alerts.services import alert_resolve, dispatch_due_deliveries
from monitoring.models import HealthStatus, MetricType
from monitoring.signals import health_checked
from tests.alerts.backends import BackWhileResolvedIsSentEmailBackend
from tests.factories import SystemHealthMetricFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
BAD, GOOD = HealthStatus.CRITICAL, HealthStatus.HEALTHY


def check_run(minute: int, status: str, run=None):
    """The health service's run at NOW + minute: the database latency check, graded `status`."""
    at = NOW + timedelta(minutes=minute)
    with time_machine.travel(at, tick=False):
        row = SystemHealthMetricFactory(
            metric_type=MetricType.DATABASE, metric_name="latency_ms", metric_value=5, status=status, timestamp=at
        )
        if run is None:
            health_checked.send(sender=None, results=[row])
        else:
            with run():  # the deliveries queued by this run are sent when it ends
                health_checked.send(sender=None, results=[row])


def flap_for_an_hour(run=None):
    """Critical on even minutes, healthy on odd ones, from 03:00 to 03:59."""
    for minute in range(60):
        check_run(minute, BAD if minute % 2 == 0 else GOOD, run)


def kinds_sent():
    return sorted(NotificationDelivery.objects.values_list("kind", flat=True))


def test_a_check_flapping_every_minute_for_an_hour_is_one_alert_paged_once_and_reopened_once(deliveries_run):
    """Before: 30 alerts, 60 "New alert" and 60 "Resolved" emails to ops and on-call (120)."""
    flap_for_an_hour(deliveries_run)

    alert = AlertHistory.objects.get()
    assert alert.resolved_at is None  # still flapping at 03:59
    assert (alert.state.occurrences, alert.state.reopened) == (30, 1)
    # 03:00 new alert; 03:01 resolved (its first clear); 03:02 back: reopened, and it stays open.
    assert kinds_sent() == ["alert"] * 2 + ["reopened"] * 2 + ["resolved"] * 2
    reopened = alert.deliveries.filter(kind=DeliveryKind.REOPENED).first()
    assert reopened.headline == "Flapping: back 1 min after it cleared (reopened 1x)"
    assert len(mail.outbox) == 6

    # Healthy from 03:59 on: resolved once it has stayed clear for 15 minutes after 03:58.
    for minute in range(59, 73):
        check_run(minute, GOOD, deliveries_run)
    alert.refresh_from_db()
    assert alert.resolved_at is None
    check_run(73, GOOD, deliveries_run)
    alert.refresh_from_db()
    assert alert.resolved_at == NOW + timedelta(minutes=73)
    assert kinds_sent().count("resolved") == 4  # ops and on-call: once at 03:01, once now
    assert len(mail.outbox) == 8


def test_a_flapping_critical_alert_stays_open_long_enough_to_escalate():
    """Before: each one-minute alert was resolved long before its 15 critical minutes, so a
    database flapping all night never reached the escalation recipients."""
    flap_for_an_hour()
    with time_machine.travel(NOW + timedelta(minutes=59), tick=False):
        assert alert_manager.escalate_due_alerts_sync() == 1
    alert = AlertHistory.objects.get()
    assert alert.escalated
    assert alert.deliveries.filter(kind=DeliveryKind.ESCALATION).get().recipient == "cto@example.com"


def test_a_condition_back_after_the_flap_window_is_a_new_alert():
    check_run(0, BAD)
    check_run(1, GOOD)  # resolved at 03:01
    check_run(17, BAD)  # 16 minutes later: a new incident
    first, second = AlertHistory.objects.order_by("triggered_at")
    assert first.resolved_at == NOW + timedelta(minutes=1)
    assert (second.triggered_at, second.state.reopened) == (NOW + timedelta(minutes=17), 0)
    assert second.deliveries.filter(kind=DeliveryKind.ALERT).count() == 2


def test_an_alert_resolved_by_hand_is_not_reopened_the_next_run_raises_a_new_one():
    check_run(0, BAD)
    alert_resolve(alert=AlertHistory.objects.get(), user=UserFactory(username="alice"))
    check_run(1, BAD)
    assert AlertHistory.objects.count() == 2
    assert AlertHistory.objects.filter(resolved_at__isnull=True).get().state.reopened == 0


def test_a_reopening_worse_than_the_alert_says_the_severity_was_raised():
    check_run(0, HealthStatus.WARNING)
    check_run(1, GOOD)
    check_run(2, BAD)
    alert = AlertHistory.objects.get()
    assert (alert.severity, alert.resolved_at, alert.state.reopened) == ("critical", None, 1)
    raised = alert.deliveries.filter(kind=DeliveryKind.SEVERITY_RAISED)
    assert sorted(raised.values_list("recipient", flat=True)) == ["oncall@example.com", "ops@example.com"]
    assert not alert.deliveries.filter(kind=DeliveryKind.REOPENED).exists()


def test_flap_minutes_zero_raises_a_new_alert_each_time(alert_settings):
    alert_settings["FLAP_MINUTES"] = 0
    for minute in range(6):
        check_run(minute, BAD if minute % 2 == 0 else GOOD)
    assert AlertHistory.objects.count() == 3
    assert not AlertHistory.objects.filter(resolved_at__isnull=True).exists()


def test_the_dashboard_shows_a_flapping_alert_as_flapping(client, viewer):
    flap_for_an_hour()
    alert = AlertHistory.objects.get()
    client.force_login(viewer)
    with time_machine.travel(NOW + timedelta(minutes=60), tick=False):
        listed = client.get(reverse("dashboard:alerts")).content.decode()
        page = client.get(reverse("dashboard:alert_detail", args=[alert.id])).content.decode()
    assert "flapping</div>" in listed
    assert "reopened 1×: back soon after clearing by itself" in page


def test_a_resolved_notice_still_waiting_is_not_sent_once_the_alert_is_back(deliveries_run):
    """The channel was down when it cleared: its "Resolved", sent after "Flapping: back", would
    tell on-call it is over while it is open and escalating."""
    check_run(0, BAD, deliveries_run)  # "New alert" sent
    check_run(1, GOOD)  # its "Resolved" not sent yet
    check_run(2, BAD)

    statuses = dict(NotificationDelivery.objects.values_list("kind", "status").distinct())
    assert statuses[DeliveryKind.RESOLVED] == DeliveryStatus.CANCELLED
    assert statuses[DeliveryKind.REOPENED] == DeliveryStatus.PENDING
    assert set(
        NotificationDelivery.objects.filter(kind=DeliveryKind.RESOLVED).values_list("last_error", flat=True)
    ) == {"alert reopened before delivery"}


def test_a_resolved_notice_failing_in_flight_as_the_alert_comes_back_is_not_retried(settings, deliveries_run):
    """Reopening cancels a "Resolved" still waiting, not one in flight; when that one failed, its
    retry told on-call it was over while the alert was open again, after "Flapping: back"."""
    check_run(0, BAD, deliveries_run)  # "New alert" sent to ops and on-call
    settings.EMAIL_BACKEND = "tests.alerts.backends.BackWhileResolvedIsSentEmailBackend"
    BackWhileResolvedIsSentEmailBackend.comes_back = lambda: check_run(1, BAD)
    check_run(1, GOOD, deliveries_run)  # resolved; its notice in flight as the check is back: reopened
    alert = AlertHistory.objects.get()
    assert (alert.resolved_at, alert.state.reopened) == (None, 1)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(NOW + timedelta(hours=1), tick=False), deliveries_run():
        dispatch_due_deliveries()

    resolved = alert.deliveries.filter(kind=DeliveryKind.RESOLVED)
    assert set(resolved.values_list("status", "last_error")) == {
        (DeliveryStatus.CANCELLED, "alert reopened before delivery")
    }
    # Told it was raised, then that it is back: never that it is over.
    sent = [email.subject.split(":")[0] for email in mail.outbox]
    assert sent == ["[CRITICAL] New alert"] * 2 + ["[CRITICAL] Flapping"] * 2


def test_a_lesser_condition_back_is_an_alert_of_its_own_not_the_worse_one_reopened():
    """Critical, cleared, then a warning a minute later: reopened, the alert read "is critical"
    under a critical badge while the check read warning. As bad or worse, it is reopened."""
    check_run(0, BAD)
    check_run(1, GOOD)
    check_run(2, HealthStatus.WARNING)

    critical, warning = AlertHistory.objects.order_by("triggered_at")
    assert (critical.severity, critical.resolved_at, critical.state.reopened) == (
        "critical",
        NOW + timedelta(minutes=1),
        0,
    )
    assert (warning.severity, warning.title, warning.resolved_at) == (
        "warning",
        "Health check database/latency_ms is warning",
        None,
    )

    check_run(3, GOOD)
    check_run(4, BAD)  # worse than the warning back: reopened, and raised
    warning.refresh_from_db()
    assert (warning.state.reopened, warning.severity, warning.resolved_at) == (1, "critical", None)
    assert AlertHistory.objects.count() == 2
