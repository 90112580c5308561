"""One alert worked from everywhere at once (Postgres, one connection per thread, a barrier lining
them up): resolved and acknowledged from the dashboard, the API and admin while the alert manager
counts new occurrences into it and the escalation sweep runs. Each race runs many times: the alert
is resolved once (one "resolved" notification per person told), an acknowledgement never
resurrects it, and every answer says what happened."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alerts.manager import alert_manager
from alerts.models import AlertHistory, AlertState, DeliveryKind, DeliveryStatus, NotificationDelivery
from alerts.services import alert_acknowledge, alert_resolve
from tests.concurrency import at_once
from tests.factories import AlertHistoryFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 25


def failure(job_type):
    return {"title": f"{job_type} job failed", "message": "boom", "job_type": job_type, "error": "boom"}


def raised_two_hours_ago_and_told(job_type) -> AlertHistory:
    """An open error alert, due for escalation, whose first notification went out."""
    alert = alert_manager.process_alert_sync("job_failure", "error", failure(job_type))
    AlertHistory.objects.filter(id=alert.id).update(triggered_at=timezone.now() - timedelta(hours=2))
    alert.deliveries.update(status=DeliveryStatus.SENT)
    return AlertHistory.objects.get(id=alert.id)


def kinds(alert) -> list[str]:
    return sorted(alert.deliveries.values_list("kind", flat=True))


def waiting(alert) -> list[str]:
    return list(alert.deliveries.filter(status=DeliveryStatus.PENDING).values_list("kind", flat=True))


def test_resolve_acknowledge_a_new_occurrence_and_the_escalation_sweep_on_one_alert_at_once():
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    for i in range(ROUNDS):
        alert = raised_two_hours_ago_and_told(f"type-{i}")
        outcomes = at_once(
            lambda: alert_resolve(alert=AlertHistory.objects.get(id=alert.id), user=bob, reason="fixed"),
            lambda: alert_acknowledge(alert=AlertHistory.objects.get(id=alert.id), user=alice),
            lambda: alert_manager.process_alert_sync("job_failure", "error", failure(f"type-{i}")),
            lambda: alert_manager.escalate_due_alerts_sync(),
        )
        assert [kind for kind, _ in outcomes] == ["ok"] * 4, outcomes
        resolved, acked, occurred, escalated = [value for _, value in outcomes]
        assert resolved is True
        alert.refresh_from_db()
        state = AlertState.objects.get(alert=alert)
        assert alert.resolved_at is not None and not state.is_open and state.resolved_by == "bob"
        # Acknowledged before it was resolved, or refused: never after.
        if acked:
            assert state.acknowledged_by == "alice" and state.acknowledged_at <= alert.resolved_at
        else:
            assert state.acknowledged_at is None
        # Counted into it before it was resolved, or opened a new alert after.
        if occurred.id == alert.id:
            assert state.occurrences == 2
        else:
            assert state.occurrences == 1 and occurred.resolved_at is None
        expected = ["alert", "resolved"] + (["acknowledged"] if acked else [])
        if escalated:
            assert alert.escalated and state.escalated_at <= alert.resolved_at
            expected.append("escalation")
        else:
            assert not alert.escalated
        assert kinds(alert) == sorted(expected)
        resolved_to = alert.deliveries.filter(kind=DeliveryKind.RESOLVED).values_list("recipient", flat=True)
        assert list(resolved_to) == ["ops@example.com"]
        # What came before the resolution and was still waiting is cancelled; nothing came after.
        assert waiting(alert) == [DeliveryKind.RESOLVED]


def test_resolving_and_acknowledging_from_the_api_the_dashboard_and_admin_at_once(alice, bearer):
    """Two resolves and two acknowledgements: one resolve is a 200 "resolved", the other says it
    was already resolved (the API's 200 already_resolved, the dashboard's 409); an acknowledgement
    after the resolution is a 409 (API) or a warning (admin)."""
    alice.is_staff = True
    alice.save()
    api, dashboard, admin = Client(), Client(), Client()
    for client in (dashboard, admin):
        client.force_login(alice)
    headers = bearer(alice)
    for i in range(ROUNDS):
        alert = raised_two_hours_ago_and_told(f"type-{i}")
        api_resolve, dashboard_resolve, api_ack, admin_ack = [
            response
            for _, response in at_once(
                lambda: api.post(f"/api/monitoring/alerts/{alert.id}/resolve", headers=headers),
                lambda: dashboard.post(f"/alerts/{alert.id}/resolve/", headers={"HX-Request": "true"}),
                lambda: api.post(f"/api/monitoring/alerts/{alert.id}/acknowledge", headers=headers),
                lambda: admin.post(f"/admin/alerts/alerthistory/{alert.id}/acknowledge/"),
            )
        ]
        assert api_resolve.status_code == 200, api_resolve.content
        assert dashboard_resolve.status_code in (200, 409)
        assert api_resolve.json()["already_resolved"] is (dashboard_resolve.status_code == 200)
        assert api_ack.status_code in (200, 409), api_ack.content
        if api_ack.status_code == 409:
            assert "was resolved at" in api_ack.json()["detail"]
        assert admin_ack.status_code == 302
        alert.refresh_from_db()
        assert alert.resolved_at is not None and not AlertState.objects.get(alert=alert).is_open
        assert alert.deliveries.filter(kind=DeliveryKind.RESOLVED).count() == 1
        assert waiting(alert) == [DeliveryKind.RESOLVED]


def test_resolving_and_acknowledging_at_once_an_alert_without_state_acknowledges_it_only_before():
    """An alert raised by other code has no state row to lock: the resolution and the
    acknowledgement race to create it. The acknowledgement comes first (its notification then
    cancelled with the alert's other pending ones) or is refused; never an "Acknowledged" sent
    about an alert already resolved, nor a 500."""
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    for _ in range(ROUNDS):
        alert = AlertHistoryFactory(job=None)
        told = NotificationDelivery.objects.create(
            alert=alert,
            kind=DeliveryKind.ALERT,
            headline="New alert",
            severity=alert.severity,
            recipient="ops@example.com",
            channel="email",
            status=DeliveryStatus.SENT,
        )
        resolved, acked = at_once(
            lambda: alert_resolve(alert=AlertHistory.objects.get(id=alert.id), user=bob, reason="fixed"),
            lambda: alert_acknowledge(alert=AlertHistory.objects.get(id=alert.id), user=alice),
        )
        assert (resolved, acked[0]) == (("ok", True), "ok"), (resolved, acked)
        alert.refresh_from_db()
        state = AlertState.objects.get(alert=alert)
        assert alert.resolved_at is not None and not state.is_open and state.resolved_by == "bob"
        assert waiting(alert) == [DeliveryKind.RESOLVED] and told.alert_id == alert.id
        if acked[1]:
            assert state.acknowledged_by == "alice" and state.acknowledged_at <= alert.resolved_at
            assert alert.deliveries.get(kind=DeliveryKind.ACKNOWLEDGED).status == DeliveryStatus.CANCELLED
        else:
            assert state.acknowledged_at is None and not alert.deliveries.filter(kind=DeliveryKind.ACKNOWLEDGED)
