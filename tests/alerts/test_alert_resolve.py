"""alert_resolve: the one resolution function behind admin, the API and the dashboard."""

import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connections

from alerts.models import AlertHistory, AlertState, DeliveryKind, DeliveryStatus
from alerts.services import alert_resolve
from tests.factories import AlertHistoryFactory, JobFactory

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def raise_alert(job_type="x"):
    from alerts.manager import alert_manager

    return alert_manager.process_alert_sync("job_failure", "error", {"title": "t", "message": "m", "job_type": job_type})


@pytest.mark.django_db
def test_resolving_sets_resolved_at_and_records_who_and_why(alice):
    alert = raise_alert()
    with time_machine.travel(NOW, tick=False):
        assert alert_resolve(alert=alert, user=alice, reason="rotated the API key") is True
    alert.refresh_from_db()
    assert alert.resolved_at == NOW
    state = AlertState.objects.get(alert=alert)
    assert (state.is_open, state.resolved_by, state.resolution_reason) == (False, "alice", "rotated the API key")


@pytest.mark.django_db
def test_resolving_twice_changes_nothing_the_second_time(alice, viewer):
    alert = raise_alert()
    assert alert_resolve(alert=alert, user=alice) is True
    first = AlertHistory.objects.get(id=alert.id).resolved_at
    assert alert_resolve(alert=alert, user=viewer, reason="me too") is False
    assert AlertHistory.objects.get(id=alert.id).resolved_at == first
    assert AlertState.objects.get(alert=alert).resolved_by == "alice"


@pytest.mark.django_db
def test_an_alert_raised_by_other_code_without_state_can_be_resolved(alice):
    alert = AlertHistoryFactory(job=JobFactory())
    assert alert_resolve(alert=alert, user=alice, reason="done") is True
    assert AlertState.objects.get(alert=alert).resolved_by == "alice"


@pytest.mark.django_db
def test_pending_deliveries_are_cancelled_but_sent_ones_kept():
    alert = raise_alert()
    alert.deliveries.update(status=DeliveryStatus.SENT)
    raise_alert()  # counted, no new delivery
    from alerts.manager import alert_manager

    alert_manager.send_notification_sync(["ops@example.com"], "Still occurring", "error", alert=alert, kind="repeat")
    alert_resolve(alert=alert)
    assert sorted(alert.deliveries.values_list("kind", "status")) == [
        ("alert", DeliveryStatus.SENT),
        ("repeat", DeliveryStatus.CANCELLED),
        ("resolved", DeliveryStatus.PENDING),  # told it was raised, so told it is over
    ]


@pytest.mark.django_db
def test_whoever_was_told_hears_who_resolved_it_escalation_included(alice):
    from alerts.manager import alert_manager

    told, untold, escalation_waits = raise_alert(), raise_alert("y"), raise_alert("z")
    for alert in (told, escalation_waits):
        alert.deliveries.update(status=DeliveryStatus.SENT)  # ops were told
        alert_manager.escalate_alert_sync(alert.id)
    told.deliveries.filter(kind=DeliveryKind.ESCALATION).update(status=DeliveryStatus.SENT)  # so was the lead

    for alert in (told, untold, escalation_waits):
        alert_resolve(alert=alert, user=alice)

    resolved = told.deliveries.filter(kind=DeliveryKind.RESOLVED, status=DeliveryStatus.PENDING)
    assert sorted(resolved.values_list("headline", "recipient")) == [
        ("Resolved by alice", "lead@example.com"),
        ("Resolved by alice", "ops@example.com"),
    ]
    assert not untold.deliveries.filter(kind=DeliveryKind.RESOLVED).exists()
    # The lead's escalation was still waiting (cancelled by the resolution): nothing to follow up.
    assert list(escalation_waits.deliveries.filter(kind=DeliveryKind.RESOLVED).values_list("recipient", flat=True)) == [
        "ops@example.com"
    ]


@pytest.mark.django_db(transaction=True)
def test_two_operators_resolving_at_once_exactly_one_wins():
    alert = raise_alert()
    outcomes, start = [], threading.Barrier(4)

    def resolve():
        try:
            start.wait(timeout=10)
            outcomes.append(alert_resolve(alert=AlertHistory.objects.get(id=alert.id), reason="race"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == [False, False, False, True]
