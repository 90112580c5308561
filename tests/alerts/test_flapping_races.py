"""A healthy reading resolves a flapping alert on what the alert is once its rows are locked, not
on what it read before (Postgres). Another node commits, from its own connection, just before
this one's first lock: the moment a resolution read the alert and is about to act on it.

ALERTS["FLAP_MINUTES"] is 15 here (tests/alerts/conftest.py)."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from alerts.manager import alert_manager, fingerprint
from alerts.models import AlertHistory, DeliveryKind, DeliveryStatus
from tests.concurrency import at_once

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
NO_WORKER = {
    "title": "No worker cluster has run for 10 min",
    "message": "No django-q2 worker has been seen since 02:50.",
    "check": "job_queue/cluster.workers",
    "error": "No worker cluster has run for 10 min",
}
CLEARED = {fingerprint("system_health", NO_WORKER): "Auto-resolved: a worker was seen."}


def at(minute: int):
    return time_machine.travel(NOW + timedelta(minutes=minute), tick=False)


def no_worker_seen():
    return alert_manager.process_alert_sync("system_health", "critical", NO_WORKER)


def a_worker_seen():
    return alert_manager.resolve_cleared_sync(CLEARED)


@contextmanager
def another_node_commits_before_the_first_lock(action):
    """`action` runs in another thread (its own connection) and commits just before this
    connection's first SELECT … FOR UPDATE inside the block: after whatever it read unlocked."""
    outcomes = []

    def before_locking(execute, sql, params, many, context):
        if not outcomes and "FOR UPDATE" in sql:
            outcomes.extend(at_once(action))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(before_locking):
        yield
    assert [outcome for outcome, _ in outcomes] == ["ok"], outcomes


def test_a_flapping_alert_seen_again_while_a_healthy_reading_resolves_it_stays_open(postgres_only):
    """Quiet for 18 minutes when the healthy reading read it, seen again by another node before it
    locked: the quiet period starts over. Before, it was resolved one instant after it was seen."""
    with at(0):
        alert = no_worker_seen()
    with at(1):
        a_worker_seen()  # its first clear: resolved
    with at(2):
        no_worker_seen()  # back within FLAP_MINUTES: reopened, flapping
    with at(20), another_node_commits_before_the_first_lock(no_worker_seen):
        resolved = a_worker_seen()

    assert resolved == []
    alert.refresh_from_db()
    assert alert.resolved_at is None
    assert (alert.state.is_open, alert.state.occurrences, alert.state.reopened) == (True, 3, 1)
    assert alert.state.last_seen_at == NOW + timedelta(minutes=20)


def test_an_alert_another_node_resolved_and_its_condition_reopened_meanwhile_is_not_resolved_again(postgres_only):
    """The cluster watchdog and a health check both see a worker again; the watchdog resolves the
    alert, the next reading finds no worker and reopens it, flapping. The health check, which read
    it open and never reopened, then resolved the alert reopened an instant before, announcing
    "Resolved" twice; it now keeps it open until it has stayed clear for FLAP_MINUTES."""
    with at(0):
        alert = no_worker_seen()
    alert.deliveries.update(status=DeliveryStatus.SENT)  # ops and on-call were paged

    def the_watchdog_resolves_it_then_it_is_back():
        assert a_worker_seen() == [alert]
        no_worker_seen()

    with at(1), another_node_commits_before_the_first_lock(the_watchdog_resolves_it_then_it_is_back):
        resolved = a_worker_seen()

    assert resolved == []
    alert.refresh_from_db()
    assert alert.resolved_at is None
    assert (alert.state.is_open, alert.state.reopened) == (True, 1)
    assert AlertHistory.objects.count() == 1
    # Told once that it was resolved (the watchdog's, cancelled by the reopening), then that it is back.
    assert sorted(alert.deliveries.values_list("kind", flat=True)) == sorted(
        [DeliveryKind.ALERT, DeliveryKind.RESOLVED, DeliveryKind.REOPENED] * 2
    )


def test_a_bad_reading_that_another_node_resolved_the_alert_under_reopens_it_after_that_resolution(postgres_only):
    """A bad reading read the time, then another node's healthy one resolved the alert before this
    one took its lock: the reopening recorded the time read before, earlier than the resolution it
    undid. Its recipients were told it was "back -1 min after it cleared", and it was last seen
    before it cleared. Times are read once the lock is held, as alert_resolve reads them."""
    with time_machine.travel(NOW, tick=False) as clock:
        alert = no_worker_seen()
        clock.move_to(NOW + timedelta(minutes=5))

        def meanwhile_a_worker_is_seen():
            clock.move_to(NOW + timedelta(minutes=5, seconds=30))
            assert a_worker_seen() == [alert]

        with another_node_commits_before_the_first_lock(meanwhile_a_worker_is_seen):
            assert no_worker_seen() == alert

    headlines = set(alert.deliveries.filter(kind=DeliveryKind.REOPENED).values_list("headline", flat=True))
    assert headlines == {"Flapping: back 0 min after it cleared (reopened 1x)"}
    alert.refresh_from_db()
    assert alert.resolved_at is None
    assert (alert.state.reopened, alert.state.last_seen_at) == (1, NOW + timedelta(minutes=5, seconds=30))
