"""Alert reads for the API, the dashboard and admin: their attributes and their query counts."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts.manager import alert_manager
from alerts.models import DeliveryStatus
from alerts.selectors import alert_list, alerts_for_job, open_alert_counts
from alerts.services import alert_acknowledge, alert_resolve
from tests.factories import AlertHistoryFactory, JobFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def job_failure(job, minutes=0):
    with time_machine.travel(NOW + timedelta(minutes=minutes), tick=False):
        return alert_manager.process_alert_sync(
            "job_failure",
            "error",
            {
                "title": f"{job.job_type} failed",
                "message": "m",
                "job_id": job.id,
                "job_type": job.job_type,
                "error": "E",
            },
        )


def test_alert_list_is_newest_first_open_only_and_carries_its_state():
    old = job_failure(JobFactory(job_type="ai_matching"), minutes=0)
    job_failure(JobFactory(job_type="ai_matching"), minutes=5)
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        health = alert_manager.process_alert_sync(
            "system_health", "critical", {"title": "db down", "message": "m", "check": "database/connect"}
        )
    resolved = job_failure(JobFactory(job_type="imports"), minutes=20)
    alert_resolve(alert=resolved, user=UserFactory(username="carol"))
    old.deliveries.filter(status=DeliveryStatus.PENDING).update(last_error="attempt 1: HTTP 500: nope")

    alerts = list(alert_list())
    assert [a.id for a in alerts] == [health.id, old.id]
    first, second = alerts
    assert (first.occurrences, first.job_type, first.last_seen_at) == (1, "", NOW + timedelta(minutes=10))
    assert first.fingerprint == "system_health:database/connect"
    assert (second.occurrences, second.job_type, second.last_seen_at) == (2, "ai_matching", NOW + timedelta(minutes=5))
    assert (second.last_delivery_error, first.last_delivery_error) == ("attempt 1: HTTP 500: nope", "")
    assert second.resolved_by == ""

    everything = list(alert_list(include_resolved=True))
    assert [a.id for a in everything] == [resolved.id, health.id, old.id]
    assert everything[0].resolved_by == "carol"
    assert [a.id for a in alert_list(severity="critical")] == [health.id]
    assert [a.id for a in alert_list(alert_type="job_failure", include_resolved=True)] == [resolved.id, old.id]


def test_alerts_raised_by_other_code_have_default_attributes():
    job = JobFactory(job_type="reports.build")
    alert = AlertHistoryFactory(job=job)
    [listed] = alert_list()
    assert (listed.id, listed.occurrences, listed.last_seen_at) == (alert.id, 1, alert.triggered_at)
    assert listed.resolved_by == ""
    assert (listed.fingerprint, listed.job_type, listed.last_delivery_error) == ("", "reports.build", "")


def test_unacknowledged_alerts_are_the_open_ones_no_acknowledgement_holds_now(django_assert_max_num_queries):
    alice = UserFactory(username="alice")
    held, lapsed, never, resolved = (job_failure(JobFactory(job_type=t), minutes=-120) for t in ("a", "b", "c", "d"))
    raised_by_other_code = AlertHistoryFactory(triggered_at=NOW - timedelta(hours=2))  # no state row at all
    with time_machine.travel(NOW - timedelta(minutes=61), tick=False):
        alert_acknowledge(alert=lapsed, user=alice)  # for 60 minutes: lapsed a minute ago
    with time_machine.travel(NOW, tick=False):
        alert_acknowledge(alert=held, user=alice)
        alert_acknowledge(alert=resolved, user=alice)
    alert_resolve(alert=resolved)

    with django_assert_max_num_queries(1):
        nobody_on_it = {a.id for a in alert_list(unacknowledged_at=NOW)}

    assert nobody_on_it == {lapsed.id, never.id, raised_by_other_code.id}
    # An hour later nothing holds any of them; a resolved alert is never listed, history or not.
    later = {a.id for a in alert_list(unacknowledged_at=NOW + timedelta(hours=1), include_resolved=True)}
    assert later == {held.id, lapsed.id, never.id, raised_by_other_code.id}


def test_alert_list_is_one_query_however_many_alerts(django_assert_max_num_queries):
    for n in range(30):
        job_failure(JobFactory(job_type=f"type{n}"))
    with django_assert_max_num_queries(1):
        alerts = list(alert_list())
        assert len(alerts) == 30
        assert all(a.occurrences == 1 and a.job_type.startswith("type") for a in alerts)
        assert {a.last_delivery_error for a in alerts} == {""}


def test_open_alert_counts_covers_every_severity_in_one_query(django_assert_max_num_queries):
    AlertHistoryFactory.create_batch(3, severity="error")
    AlertHistoryFactory(severity="critical")
    AlertHistoryFactory(severity="critical", resolved_at=NOW)
    with django_assert_max_num_queries(1):
        assert open_alert_counts() == {"info": 0, "warning": 0, "error": 3, "critical": 1}


def test_alerts_for_job_finds_the_alert_it_raised_and_the_one_it_was_counted_into(django_assert_max_num_queries):
    first, second, other = JobFactory(job_type="ai_matching"), JobFactory(job_type="ai_matching"), JobFactory()
    alert = job_failure(first)
    job_failure(second)
    with django_assert_max_num_queries(3):  # one per call
        assert [a.id for a in alerts_for_job(first.id)] == [alert.id]
        found = alerts_for_job(second.id)
        assert [(a.id, a.occurrences) for a in found] == [(alert.id, 2)]
        assert alerts_for_job(other.id) == []


def test_alerts_for_job_are_the_latest_ones_newest_first():
    job = JobFactory()
    alerts = [AlertHistoryFactory(job=job, triggered_at=NOW - timedelta(minutes=n)) for n in range(5)]
    AlertHistoryFactory(job=JobFactory())  # another job's

    assert alerts_for_job(job.id) == alerts
    assert alerts_for_job(job.id, limit=2) == alerts[:2]


def test_the_resolution_reason_is_read_with_the_alert():
    alert = job_failure(JobFactory())
    alert_resolve(alert=alert, user=UserFactory(username="carol"), reason="fixed the DNS")

    [listed] = alert_list(include_resolved=True)

    assert (listed.resolved_by, listed.resolution_reason) == ("carol", "fixed the DNS")
    assert AlertHistoryFactory().id in {a.id for a in alert_list()}
    assert {a.resolution_reason for a in alert_list()} == {""}
