"""One open alert per fingerprint: repeats are counted, not re-notified, until the repeat interval."""

import multiprocessing
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connections

from alerts.manager import alert_manager
from alerts.models import AlertHistory, AlertState, DeliveryKind, NotificationDelivery
from alerts.selectors import alerts_for_job
from alerts.services import alert_resolve
from jobs.signals import job_finished
from monitoring.selectors import alert_jobs
from tests.factories import JobFactory

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def fail(job_type="ai_matching", **fields):
    job = JobFactory(failed=True, job_type=job_type, **fields)
    job_finished.send(sender=type(job), job=job)
    return job


def health(severity="warning", check="database/latency_ms"):
    return {"title": f"{check} is {severity}", "message": "slow", "check": check, "error": f"{check} = 900"}


@pytest.mark.django_db
def test_a_repeat_is_counted_into_the_open_alert_without_a_new_notification():
    with time_machine.travel(NOW, tick=False):
        first = fail()
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        second = fail(last_error={"type": "httpx.ReadTimeout", "message": "read timed out", "error_class": "transient"})

    alert = AlertHistory.objects.get()
    assert alert.job_id == first.id  # the first job raised it
    state = alert.state
    assert (state.occurrences, state.last_seen_at, state.last_job_id) == (2, NOW + timedelta(minutes=5), second.id)
    assert state.error_summary == "httpx.ReadTimeout: read timed out (transient)"
    assert NotificationDelivery.objects.count() == 1
    assert [a.id for a in alerts_for_job(second.id)] == [alert.id]


@pytest.mark.django_db
def test_the_alert_lists_every_job_counted_into_it_the_first_included():
    with time_machine.travel(NOW, tick=False):
        first = fail()
        second = fail()

    alert = AlertHistory.objects.get()
    assert [row["job_id"] for row in alert_jobs(alert.id)] == [second.id, first.id]


@pytest.mark.django_db
def test_other_job_types_and_checks_get_alerts_of_their_own():
    fail("ai_matching")
    fail("imports.candidates")
    alert_manager.process_alert_sync("system_health", "warning", health(check="database/latency_ms"))
    alert_manager.process_alert_sync("system_health", "warning", health(check="api/ai_matching"))
    assert sorted(AlertState.objects.values_list("fingerprint", flat=True)) == [
        "job_failure:ai_matching/transient",
        "job_failure:imports.candidates/transient",
        "system_health:api/ai_matching",
        "system_health:database/latency_ms",
    ]


@pytest.mark.django_db
def test_a_new_error_class_in_the_same_job_type_is_an_alert_and_a_notification_of_its_own():
    fail()  # transient: timeouts all night
    fail(
        error_class="configuration",
        last_error={"type": "KeyError", "message": "API_KEY", "error_class": "configuration"},
    )
    fail()
    states = AlertState.objects.order_by("fingerprint")
    assert [(s.fingerprint, s.occurrences) for s in states] == [
        ("job_failure:ai_matching/configuration", 1),
        ("job_failure:ai_matching/transient", 2),
    ]
    assert NotificationDelivery.objects.filter(kind=DeliveryKind.ALERT).count() == 2


@pytest.mark.django_db
def test_once_resolved_a_new_occurrence_opens_a_new_alert():
    fail()
    old = AlertHistory.objects.get()
    assert alert_resolve(alert=old, reason="fixed the key")
    fail()
    new = AlertHistory.objects.exclude(id=old.id).get()
    assert (new.state.occurrences, new.state.is_open) == (1, True)
    assert NotificationDelivery.objects.filter(alert=new, kind=DeliveryKind.ALERT).count() == 1


@pytest.mark.django_db
def test_an_unresolved_alert_that_keeps_occurring_notifies_again_after_the_repeat_interval():
    with time_machine.travel(NOW, tick=False):
        fail()
    for minutes in (30, 59):
        with time_machine.travel(NOW + timedelta(minutes=minutes), tick=False):
            fail()
    alert = AlertHistory.objects.get()
    assert alert.deliveries.count() == 1

    with time_machine.travel(NOW + timedelta(minutes=61), tick=False):
        fail()
        fail()  # the same minute: still one repeat
    repeats = list(alert.deliveries.filter(kind=DeliveryKind.REPEAT))
    assert [r.headline for r in repeats] == ["Still occurring: 4 times since 2026-11-29 03:00 UTC"]
    assert AlertState.objects.get(alert=alert).last_notified_at == NOW + timedelta(minutes=61)

    with time_machine.travel(NOW + timedelta(minutes=122), tick=False):
        fail()
    assert alert.deliveries.filter(kind=DeliveryKind.REPEAT).count() == 2
    assert alert.state.occurrences == 6


@pytest.mark.django_db
def test_the_repeat_interval_is_configurable_and_zero_turns_repeats_off(alert_settings):
    alert_settings["RULES"] = {"system_health": {"repeat_after_minutes": 0}}
    with time_machine.travel(NOW, tick=False):
        alert_manager.process_alert_sync("system_health", "warning", health())
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        alert = alert_manager.process_alert_sync("system_health", "warning", health())
    assert (alert.state.occurrences, alert.deliveries.count()) == (2, 1)


@pytest.mark.django_db
def test_an_occurrence_worse_than_the_alert_raises_its_severity_and_says_so():
    alert_manager.process_alert_sync("system_health", "warning", health("warning"))
    alert = alert_manager.process_alert_sync("system_health", "critical", health("critical"))
    alert.refresh_from_db()
    assert alert.severity == "critical"
    assert alert.recipients == ["ops@example.com", "oncall@example.com"]
    raised = list(alert.deliveries.filter(kind=DeliveryKind.SEVERITY_RAISED).values_list("headline", "recipient"))
    assert raised == [
        ("Severity raised from warning to critical", "ops@example.com"),
        ("Severity raised from warning to critical", "oncall@example.com"),
    ]
    # Back to warning is just another occurrence of the (critical) alert.
    alert_manager.process_alert_sync("system_health", "warning", health("warning"))
    alert.refresh_from_db()
    assert (alert.severity, alert.state.occurrences, alert.deliveries.count()) == ("critical", 3, 3)


@pytest.mark.django_db
def test_should_alert_answers_whether_an_occurrence_would_notify_now(alert_settings):
    data = {"job_type": "ai_matching", "title": "ai_matching job failed", "message": "boom"}
    with time_machine.travel(NOW, tick=False):
        assert alert_manager.should_alert("job_failure", data) is True
        alert_manager.process_alert_sync("job_failure", "error", data)
        assert alert_manager.should_alert("job_failure", data) is False  # counted, not notified
        assert alert_manager.should_alert("job_failure", {**data, "job_type": "other"}) is True
    with time_machine.travel(NOW + timedelta(minutes=60), tick=False):
        assert alert_manager.should_alert("job_failure", data) is True  # the repeat is due
    alert_settings["RULES"] = {"job_failure": {"enabled": False}}
    assert alert_manager.should_alert("job_failure", {**data, "job_type": "other"}) is False


@pytest.mark.django_db
def test_an_alert_resolved_behind_our_back_does_not_swallow_new_occurrences():
    fail()
    AlertHistory.objects.update(resolved_at=NOW)  # a raw UPDATE, not alert_resolve
    fail()
    assert AlertHistory.objects.filter(resolved_at__isnull=True).get().state.occurrences == 1


@pytest.mark.django_db
def test_the_database_refuses_a_second_open_alert_with_the_same_fingerprint():
    from django.db import IntegrityError, transaction

    fail()
    second = AlertHistory.objects.create(alert_type="job_failure", severity="error", title="t", message="m")
    with pytest.raises(IntegrityError), transaction.atomic():
        AlertState.objects.create(alert=second, fingerprint="job_failure:ai_matching/transient")


@pytest.mark.django_db
def test_the_loser_of_a_race_to_open_an_alert_counts_into_the_winner(monkeypatch):
    """Process B looked before process A's new alert was visible, then tried to open its own."""
    fail()
    real_count = alert_manager._count_occurrence
    looked_too_early = []

    def count_as_if_too_early(*args):
        if not looked_too_early:
            looked_too_early.append(True)
            return None
        return real_count(*args)

    monkeypatch.setattr(alert_manager, "_count_occurrence", count_as_if_too_early)
    fail()
    assert looked_too_early
    alert = AlertHistory.objects.get()
    assert (alert.state.occurrences, alert.deliveries.count()) == (2, 1)


# --- a burst from several workers at once ------------------------------------------------


def _report_failures(job_ids, start):
    """What a worker does when its jobs fail: one job_finished each, on its own connection."""
    from jobs.models import Job

    try:
        start.wait(timeout=30)
        for job in Job.objects.filter(id__in=job_ids):
            job_finished.send(sender=Job, job=job)
    finally:
        connections.close_all()


def _burst_jobs(count):
    return [str(job.id) for job in JobFactory.create_batch(count, failed=True, job_type="ai_matching")]


def _assert_one_alert_counting(count):
    alert = AlertHistory.objects.get()
    assert alert.state.occurrences == count
    assert NotificationDelivery.objects.count() == 1  # one recipient, told once
    assert alert.occurrence_jobs.count() == count


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_500_failures_from_4_threads_gives_one_alert_one_notification_count_500():
    jobs = _burst_jobs(500)
    start = threading.Barrier(4)
    threads = [threading.Thread(target=_report_failures, args=(jobs[i::4], start)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    _assert_one_alert_counting(500)


@pytest.mark.django_db(transaction=True)
def test_a_burst_from_2_worker_processes_gives_one_alert():
    jobs = _burst_jobs(200)
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    connections.close_all()  # each process opens its own connection
    processes = [context.Process(target=_report_failures, args=(jobs[i::2], start)) for i in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0]
    _assert_one_alert_counting(200)


@pytest.mark.django_db(transaction=True)
def test_an_occurrence_waiting_on_a_resolution_opens_a_new_alert_once_it_commits(postgres_only):
    """The occurrence blocks on the state row the resolution locked; when it commits, the
    occurrence must see the alert closed and open a new one, not fail or count into the old."""
    from django.db import transaction

    failure = {"title": "ai_matching failed", "message": "m", "job_type": "ai_matching", "error": "boom"}
    first = alert_manager.process_alert_sync("job_failure", "error", failure)
    resolved_uncommitted, outcome = threading.Event(), {}

    def resolve_slowly():
        try:
            with transaction.atomic():
                alert_resolve(alert=AlertHistory.objects.get(id=first.id), reason="fixed")
                resolved_uncommitted.set()
                time.sleep(0.5)  # the occurrence is now waiting for the row lock
        finally:
            connections.close_all()

    def occur():
        try:
            resolved_uncommitted.wait(timeout=10)
            outcome["alert"] = alert_manager.process_alert_sync("job_failure", "error", failure)
        except Exception as e:  # the failure under test: reported, not raised in a thread
            outcome["error"] = e
        finally:
            connections.close_all()

    threads = [threading.Thread(target=resolve_slowly), threading.Thread(target=occur)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert "error" not in outcome, outcome.get("error")
    assert outcome["alert"].id != first.id
    assert AlertState.objects.get(alert=first).occurrences == 1  # nothing counted into the resolved one
    assert AlertHistory.objects.get(resolved_at__isnull=True).id == outcome["alert"].id


@pytest.mark.django_db
def test_open_job_failure_alerts_raised_before_fingerprints_named_the_error_class_take_the_new_form():
    import importlib

    from django.apps import apps

    old = fail()
    AlertState.objects.update(fingerprint="job_failure:ai_matching")  # as raised before the change
    importlib.import_module(
        "alerts.migrations.0004_job_failure_fingerprints_name_the_error_class"
    ).name_the_error_class(apps, None)
    assert AlertState.objects.get().fingerprint == "job_failure:ai_matching/transient"
    fail()  # the next failure of the same class counts into it
    assert AlertHistory.objects.count() == 1 and AlertState.objects.get().occurrences == 2
    assert old.id == AlertHistory.objects.get().job_id
