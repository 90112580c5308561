"""Acknowledging an alert: someone is on it, so for ALERTS["ACKNOWLEDGE_MINUTES"] (60 here) it is
neither escalated nor notified again; still open after that, both resume."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connections

from alerts.checks import check_alert_settings
from alerts.manager import alert_manager
from alerts.models import AlertHistory, AlertState, DeliveryKind, DeliveryStatus
from alerts.services import alert_acknowledge, alert_resolve
from alerts.tasks import escalate_due_alerts
from tests.factories import AlertHistoryFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def at(minutes: float):
    return time_machine.travel(NOW + timedelta(minutes=minutes), tick=False)


def occur(severity="error", minutes: float = 0, **data):
    with at(minutes):
        failed = {"title": "ai_matching job failed", "message": "boom", "job_type": "ai_matching", **data}
        return alert_manager.process_alert_sync("job_failure", severity, failed)


def acknowledge(alert, user, minutes: float) -> bool:
    with at(minutes):
        return alert_acknowledge(alert=alert, user=user)


def sweep(minutes: float) -> int:
    with at(minutes):
        return escalate_due_alerts()


def sent(alert, kind) -> list[str]:
    return list(alert.deliveries.filter(kind=kind).order_by("id").values_list("headline", flat=True))


def test_acknowledging_records_who_when_and_until_when(alice):
    alert = occur()
    assert acknowledge(alert, alice, minutes=5) is True
    state = AlertState.objects.get(alert=alert)
    assert (state.acknowledged_by, state.acknowledged_at) == ("alice", NOW + timedelta(minutes=5))
    assert state.acknowledged_until == NOW + timedelta(minutes=65)


def test_an_acknowledged_alert_escalates_only_once_its_acknowledgement_lapsed_unresolved(alice):
    alert = occur("error")  # escalates after 60 min unresolved
    acknowledge(alert, alice, minutes=30)  # holds it until 90

    assert sweep(61) == 0
    assert sweep(89) == 0
    assert sent(alert, DeliveryKind.ESCALATION) == []

    assert sweep(91) == 1
    alert.refresh_from_db()
    assert alert.escalated is True
    # The lead is told someone had it and did not resolve it in time.
    assert sent(alert, DeliveryKind.ESCALATION) == ["Escalated: unresolved for 91 min, acknowledged by alice 03:30 UTC"]


def test_the_sweep_does_not_escalate_an_alert_acknowledged_after_it_was_picked(alice):
    """The sweep reads its candidates, then escalates each under the state's lock: an
    acknowledgement committed in between wins. Escalating by hand is not held."""
    alert = occur("critical")
    acknowledge(alert, alice, minutes=16)
    with at(16):
        assert alert_manager.escalate_alert_sync(alert.id, unless_acknowledged=True) is False
        assert alert_manager.escalate_alert_sync(alert.id) is True


def test_acknowledged_alerts_do_not_take_the_sweeps_places_from_the_others(alice):
    """The sweep escalates at most `limit` alerts, the oldest first: held ones are not among them."""
    held = occur("critical", job_type="a")
    other = occur("critical", minutes=1, job_type="b")
    acknowledge(held, alice, minutes=2)
    with at(20):
        assert alert_manager.escalate_due_alerts_sync(limit=1) == 1
    other.refresh_from_db()
    assert other.escalated is True


def test_an_acknowledged_alert_counts_occurrences_without_repeating_its_notification(alice):
    alert = occur()
    first = alert.deliveries.count()
    acknowledge(alert, alice, minutes=5)  # holds it until 65

    occur(minutes=61)  # a repeat is due 60 min after the first notification
    with at(61):
        assert alert_manager.should_alert("job_failure", {"job_type": "ai_matching"}) is False
    assert alert.deliveries.count() == first
    assert AlertState.objects.get(alert=alert).occurrences == 2

    occur(minutes=66)  # the acknowledgement lapsed: it is still happening, say so again
    assert sent(alert, DeliveryKind.REPEAT) == ["Still occurring: 3 times since 2026-11-29 03:00 UTC"]


def test_a_worse_occurrence_ends_the_acknowledgement_and_is_notified(alice):
    alert = occur("warning")
    acknowledge(alert, alice, minutes=1)

    occur("critical", minutes=10)

    state = AlertState.objects.get(alert=alert)
    assert state.acknowledged_until == NOW + timedelta(minutes=10)  # ended then
    assert state.acknowledged_by == "alice"  # who had it stays on record
    assert set(sent(alert, DeliveryKind.SEVERITY_RAISED)) == {
        "Severity raised from warning to critical (acknowledged by alice: acknowledge again)"
    }
    assert sweep(16) == 1  # critical escalates 15 min after it was raised, unheld


def test_acknowledging_again_renews_it_from_now_for_whoever_did(alice):
    alert = occur()
    acknowledge(alert, alice, minutes=1)
    assert acknowledge(alert, UserFactory(username="bob"), minutes=50) is True
    state = AlertState.objects.get(alert=alert)
    assert (state.acknowledged_by, state.acknowledged_until) == ("bob", NOW + timedelta(minutes=110))
    assert sweep(100) == 0


def test_whoever_was_told_hears_who_is_on_it_once_per_person(alice):
    alert = occur("critical")
    alert.deliveries.update(status=DeliveryStatus.SENT)  # ops and on-call were paged

    acknowledge(alert, alice, minutes=5)
    acknowledge(alert, alice, minutes=20)  # renewed while it holds: nothing new to tell
    acknowledge(alert, UserFactory(username="bob"), minutes=30)  # someone else took it over

    acknowledgements = alert.deliveries.filter(kind=DeliveryKind.ACKNOWLEDGED).order_by("id")
    assert [(d.headline, d.recipient, d.severity) for d in acknowledgements] == [
        ("Acknowledged by alice until 04:05 UTC", "ops@example.com", "critical"),
        ("Acknowledged by alice until 04:05 UTC", "oncall@example.com", "critical"),
        ("Acknowledged by bob until 04:30 UTC", "ops@example.com", "critical"),
        ("Acknowledged by bob until 04:30 UTC", "oncall@example.com", "critical"),
    ]
    # Lapsed, it is news again that alice is back on it.
    acknowledge(alert, alice, minutes=100)
    assert sent(alert, DeliveryKind.ACKNOWLEDGED)[-1] == "Acknowledged by alice until 05:40 UTC"


def test_nobody_hears_of_the_acknowledgement_of_an_alert_they_were_never_told_of(alice):
    alert = occur()  # its notification still waits for its first attempt
    acknowledge(alert, alice, minutes=1)
    assert sent(alert, DeliveryKind.ACKNOWLEDGED) == []


def test_a_resolved_alert_cannot_be_acknowledged(alice):
    alert = occur()
    alert_resolve(alert=alert)
    assert acknowledge(alert, alice, minutes=1) is False
    assert AlertState.objects.get(alert=alert).acknowledged_at is None


def test_an_alert_raised_by_other_code_without_state_can_be_acknowledged(alice):
    alert = AlertHistoryFactory(job=None, triggered_at=NOW)
    assert acknowledge(alert, alice, minutes=10) is True
    assert AlertState.objects.get(alert=alert).acknowledged_by == "alice"
    assert sweep(61) == 0
    assert sweep(71) == 1


@pytest.mark.django_db(transaction=True)
def test_acknowledging_at_once_an_alert_without_state_acknowledges_it_once_and_errs_nowhere(alice):
    """No state row to lock yet: the clicks race to create it (a double click, two operators)."""
    alert = AlertHistoryFactory(job=None)
    outcomes, errors, start = [], [], threading.Barrier(4)

    def click():
        try:
            start.wait(timeout=10)
            outcomes.append(alert_acknowledge(alert=AlertHistory.objects.get(id=alert.id), user=alice))
        except Exception as e:  # noqa: BLE001 - the test is that there is none
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert (errors, outcomes) == ([], [True] * 4)
    assert AlertState.objects.get(alert=alert).acknowledged_by == "alice"


def test_an_acknowledgement_that_never_lapses_is_refused_at_startup(alert_settings):
    alert_settings["ACKNOWLEDGE_MINUTES"] = 0
    assert [error.msg for error in check_alert_settings()] == ["ALERTS_ACKNOWLEDGE_MINUTES: at least 1, not 0"]
