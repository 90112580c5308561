"""Email notifications through Django's email backend (the test outbox), retried with backoff."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from alerts.models import AlertHistory, DeliveryKind, DeliveryStatus, NotificationDelivery
from alerts.services import alert_acknowledge, alert_resolve, delivery_send, dispatch_due_deliveries
from jobs.signals import job_finished
from tests.alerts.backends import FlakyEmailBackend
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def flaky_email(settings):
    settings.EMAIL_BACKEND = "tests.alerts.backends.FlakyEmailBackend"
    FlakyEmailBackend.calls = 0

    def fail_first(n):
        FlakyEmailBackend.failures = n

    return fail_first


def fail(**fields):
    job = JobFactory(failed=True, job_type="ai_matching", **fields)
    job_finished.send(sender=type(job), job=job)
    return job


def test_the_email_says_what_an_operator_needs_to_act(deliveries_run):
    with time_machine.travel(NOW, tick=False), deliveries_run():
        job = fail()
        for _ in range(4):
            fail()

    alert = AlertHistory.objects.get()
    [email] = mail.outbox  # five failures, one notification
    assert email.to == ["ops@example.com"]
    assert email.subject == "[ERROR] New alert: ai_matching job failed"
    assert email.extra_headers["X-Alert-Id"] == str(alert.id)
    body = email.body
    assert "Alert:       ai_matching job failed" in body
    assert "Severity:    error" in body
    assert f"Job:         ai_matching / {alert.state.last_job_id}" in body
    assert "Error:       httpx.ConnectTimeout: timed out (transient)" in body
    assert "Occurrences: 5 (first 2026-11-29T03:00:00+00:00, last 2026-11-29T03:00:00+00:00)" in body
    assert f"Alert: https://monitor.example.com/alerts/{alert.id}/" in body
    assert f"Job:   https://monitor.example.com/jobs/{alert.state.last_job_id}/" in body
    assert str(job.id) in alert.message

    alert.refresh_from_db()
    assert alert.notification_sent is True
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.SENT, 1, "")


def test_a_notification_sent_while_an_acknowledgement_holds_says_who_is_on_it(deliveries_run, flaky_email, alice):
    """The lead's escalation failed once and waits for its retry when alice acknowledges: when it
    goes out, the lead must not start on it too. Nor must the first notification's late retry."""
    from alerts.manager import alert_manager

    flaky_email(0)
    with time_machine.travel(NOW, tick=False), deliveries_run():
        fail()
    alert = AlertHistory.objects.get()
    FlakyEmailBackend.calls = 0
    flaky_email(1)
    with time_machine.travel(NOW + timedelta(minutes=61), tick=False), deliveries_run():
        alert_manager.escalate_alert_sync(alert.id)  # to the lead; its first attempt fails
    with time_machine.travel(NOW + timedelta(minutes=62), tick=False):
        alert_acknowledge(alert=alert, user=alice)  # ops (told) hears it; the lead was told nothing yet

    with time_machine.travel(NOW + timedelta(minutes=65), tick=False), deliveries_run():
        dispatch_due_deliveries()

    by_subject = {email.subject: email for email in mail.outbox}
    assert set(by_subject) == {
        "[ERROR] New alert: ai_matching job failed",  # before the acknowledgement
        "[ERROR] Acknowledged by alice until 05:02 UTC: ai_matching job failed",
        "[ERROR] Escalated: unresolved for 61 min: ai_matching job failed (acknowledged by alice until 05:02 UTC)",
    }
    escalation = by_subject[
        "[ERROR] Escalated: unresolved for 61 min: ai_matching job failed (acknowledged by alice until 05:02 UTC)"
    ]
    assert escalation.to == ["lead@example.com"]
    assert "Now:         acknowledged by alice until 05:02 UTC" in escalation.body


def test_a_failed_send_is_retried_with_backoff_and_notification_sent_waits_for_success(deliveries_run, flaky_email):
    flaky_email(1)
    with time_machine.travel(NOW, tick=False), deliveries_run():
        fail()

    alert = AlertHistory.objects.get()
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.last_error == "attempt 1: SMTPServerDisconnected: Connection unexpectedly closed"
    # base 30 s * 2**1, plus 10-30 % jitter
    assert NOW + timedelta(seconds=66) <= delivery.next_attempt_at <= NOW + timedelta(seconds=78)
    assert alert.notification_sent is False and mail.outbox == []

    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):
        assert dispatch_due_deliveries() == 0  # not due yet
    with time_machine.travel(NOW + timedelta(seconds=80), tick=False), deliveries_run():
        assert dispatch_due_deliveries() == 1

    delivery.refresh_from_db()
    alert.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert delivery.sent_at == NOW + timedelta(seconds=80)
    assert alert.notification_sent is True
    assert len(mail.outbox) == 1


def test_a_first_attempt_goes_at_once_even_to_a_node_whose_clock_is_behind_the_raising_one(deliveries_run):
    with time_machine.travel(NOW + timedelta(seconds=2), tick=False):
        fail()  # raised on a node 2 s ahead
    with time_machine.travel(NOW, tick=False), deliveries_run():
        assert delivery_send(delivery_id=NotificationDelivery.objects.get().id) == DeliveryStatus.SENT
    assert len(mail.outbox) == 1


def test_after_its_last_attempt_a_delivery_fails_for_good_and_keeps_the_error(deliveries_run, flaky_email):
    flaky_email(99)
    when = NOW
    with time_machine.travel(when, tick=False), deliveries_run():
        fail()
    for _ in range(2):
        when += timedelta(hours=1)
        with time_machine.travel(when, tick=False), deliveries_run():
            dispatch_due_deliveries()

    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    assert delivery.last_error.startswith("attempt 3: SMTPServerDisconnected")
    assert AlertHistory.objects.get().notification_sent is False
    with time_machine.travel(when + timedelta(hours=1), tick=False):
        assert dispatch_due_deliveries() == 0


def test_a_refused_recipient_is_not_retried(deliveries_run, settings):
    settings.EMAIL_BACKEND = "tests.alerts.backends.RefusingEmailBackend"
    with deliveries_run():
        fail()
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert "User unknown" in delivery.last_error


def test_resolving_the_alert_cancels_deliveries_still_waiting(deliveries_run, flaky_email):
    flaky_email(1)
    with time_machine.travel(NOW, tick=False), deliveries_run():
        fail()
    assert alert_resolve(alert=AlertHistory.objects.get())
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.CANCELLED, "alert resolved before delivery")
    with time_machine.travel(NOW + timedelta(hours=1), tick=False), deliveries_run():
        assert dispatch_due_deliveries() == 0
    assert mail.outbox == []


def test_a_send_that_fails_after_its_alert_was_resolved_is_not_retried(deliveries_run, settings):
    """Resolving cancels the deliveries waiting, not one in flight; if that one fails, its retry
    must not page anyone about an alert already resolved."""
    settings.EMAIL_BACKEND = "tests.alerts.backends.ResolvedWhileSendingEmailBackend"
    with time_machine.travel(NOW, tick=False), deliveries_run():
        fail()
    delivery = NotificationDelivery.objects.get(kind=DeliveryKind.ALERT)
    assert delivery.status == DeliveryStatus.PENDING  # failed in flight: a retry is planned

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(NOW + timedelta(hours=1), tick=False), deliveries_run():
        dispatch_due_deliveries()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.CANCELLED, "alert resolved before delivery")
    # It may have reached them before the server went away: they hear it was resolved, nothing more.
    assert [email.subject.split(":")[0] for email in mail.outbox] == ["[ERROR] Resolved"]


def test_an_alert_raised_by_other_code_is_delivered_too_even_with_odd_text(deliveries_run):
    from alerts.manager import alert_manager
    from tests.factories import AlertHistoryFactory

    alert = AlertHistoryFactory(title="two\nlines", message="", job=JobFactory(job_type="reports.build"))
    with deliveries_run():
        alert_manager.send_notification_sync(["ops@example.com"], "New alert", "error", alert=alert)
    [email] = mail.outbox
    assert email.subject == "[ERROR] New alert: two lines"
    assert f"Job:         reports.build / {alert.job_id}" in email.body
    assert "Occurrences: 1 " in email.body


def test_nobody_to_notify_for_a_severity_means_no_delivery_and_notification_sent_stays_false(alert_settings):
    alert_settings["RECIPIENTS"]["error"] = []
    fail()
    alert = AlertHistory.objects.get()
    assert (alert.recipients, alert.notification_sent, alert.deliveries.count()) == ([], False, 0)


def test_direction_controls_in_an_error_are_shown_not_obeyed(deliveries_run):
    """A right-to-left override in a job's error turned the rest of the email's line around
    (" (system)" read backwards). Plain text cannot isolate part of a line as the dashboard's
    <bdi> does: the notification shows the control instead."""
    with time_machine.travel(NOW, tick=False), deliveries_run():
        job = fail(message="boom \u202eevil", last_error={"type": "ValueError", "message": "boom \u202eevil"})

    [email] = mail.outbox
    assert "Error:       ValueError: boom <U+202E>evil (transient)" in email.body
    assert "\u202e" not in email.body + email.subject
    assert "boom \u202eevil" in job.message  # what is stored is left as it is
