"""An occurrence that waits for another writer of the same alert acts on what that writer
committed: a severity raise, an escalation's recipients (Postgres: the state row's lock)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from alerts.manager import alert_manager
from alerts.models import AlertHistory, AlertState, DeliveryKind

pytestmark = pytest.mark.django_db(transaction=True)


def health(check="database/latency_ms"):
    return {"title": f"{check} is slow", "message": "slow", "check": check, "error": f"{check} = 900"}


def wait_until_someone_waits_for_a_lock(timeout=10.0):
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second writer never waited for the first one's lock")


def first_holds_its_locks_while_second_waits(first, second):
    """`first` runs in a transaction kept open until `second` is blocked on its locks, then commits."""
    done_uncommitted, release, errors = threading.Event(), threading.Event(), []

    def run(action, hold=False):
        try:
            with transaction.atomic():
                action()
                if hold:
                    done_uncommitted.set()
                    release.wait(10)
        except Exception as e:  # reported below, not lost in a thread
            errors.append(e)
        finally:
            connections.close_all()

    holder = threading.Thread(target=run, args=(first, True))
    holder.start()
    assert done_uncommitted.wait(10)
    waiter = threading.Thread(target=run, args=(second,))
    waiter.start()
    wait_until_someone_waits_for_a_lock()
    release.set()
    holder.join(20)
    waiter.join(20)
    assert not errors, errors


def test_a_critical_occurrence_waiting_on_an_error_one_still_raises_the_alert_to_critical(postgres_only):
    alert = alert_manager.process_alert_sync("system_health", "warning", health())
    first_holds_its_locks_while_second_waits(
        lambda: alert_manager.process_alert_sync("system_health", "error", health()),
        lambda: alert_manager.process_alert_sync("system_health", "critical", health()),
    )
    alert.refresh_from_db()
    assert (alert.severity, alert.state.occurrences) == ("critical", 3)
    raised = alert.deliveries.filter(kind=DeliveryKind.SEVERITY_RAISED).values_list("headline", "recipient")
    assert ("Severity raised from error to critical", "oncall@example.com") in raised


def test_a_severity_raise_waiting_on_an_escalation_keeps_the_escalation_recipients(postgres_only):
    alert = alert_manager.process_alert_sync("system_health", "error", health())
    AlertHistory.objects.filter(id=alert.id).update(triggered_at=timezone.now() - timedelta(hours=2))
    first_holds_its_locks_while_second_waits(
        lambda: alert_manager.escalate_alert_sync(alert.id),
        lambda: alert_manager.process_alert_sync("system_health", "critical", health()),
    )
    alert.refresh_from_db()
    assert (alert.escalated, alert.severity) == (True, "critical")
    assert alert.recipients == ["ops@example.com", "lead@example.com", "oncall@example.com", "cto@example.com"]


def test_a_repeat_waiting_on_an_escalation_goes_to_the_escalation_recipients_too(postgres_only):
    alert = alert_manager.process_alert_sync("system_health", "error", health())
    AlertHistory.objects.filter(id=alert.id).update(triggered_at=timezone.now() - timedelta(hours=2))
    AlertState.objects.filter(alert=alert).update(last_notified_at=timezone.now() - timedelta(hours=2))
    first_holds_its_locks_while_second_waits(
        lambda: alert_manager.escalate_alert_sync(alert.id),
        lambda: alert_manager.process_alert_sync("system_health", "error", health()),
    )
    repeat = alert.deliveries.filter(kind=DeliveryKind.REPEAT).values_list("recipient", flat=True)
    assert sorted(repeat) == ["lead@example.com", "ops@example.com"]
