"""Escalation: an alert unresolved past its severity's time is escalated once, by the periodic task."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from alerts.manager import alert_manager
from alerts.models import DeliveryKind
from alerts.services import alert_resolve
from alerts.tasks import escalate_due_alerts
from jobs.schedules import PREFIX

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def raise_alert(severity, job_type="ai_matching"):
    with time_machine.travel(NOW, tick=False):
        return alert_manager.process_alert_sync(
            "job_failure", severity, {"title": f"{job_type} job failed", "message": "boom", "job_type": job_type}
        )


def sweep(after: timedelta) -> int:
    with time_machine.travel(NOW + after, tick=False):
        return escalate_due_alerts()


def escalations(alert):
    return list(alert.deliveries.filter(kind=DeliveryKind.ESCALATION).values_list("recipient", "headline"))


def test_an_error_alert_unresolved_for_an_hour_is_escalated_and_its_escalation_recipients_told_once():
    alert = raise_alert("error")
    assert sweep(timedelta(minutes=59)) == 0
    alert.refresh_from_db()
    assert alert.escalated is False

    assert sweep(timedelta(minutes=61)) == 1
    alert.refresh_from_db()
    assert alert.escalated is True
    assert alert.state.escalated_at == NOW + timedelta(minutes=61)
    assert alert.recipients == ["ops@example.com", "lead@example.com"]
    assert escalations(alert) == [("lead@example.com", "Escalated: unresolved for 61 min")]

    assert sweep(timedelta(minutes=62)) == 0
    assert sweep(timedelta(hours=5)) == 0
    assert len(escalations(alert)) == 1


def test_each_severity_has_its_own_escalation_time():
    critical, warning = raise_alert("critical", "a"), raise_alert("warning", "b")
    assert sweep(timedelta(minutes=16)) == 1
    assert escalations(critical) == [("cto@example.com", "Escalated: unresolved for 16 min")]
    assert sweep(timedelta(hours=4, minutes=1)) == 1
    warning.refresh_from_db()
    assert warning.escalated is True
    assert escalations(warning) == []  # nobody configured beyond the usual recipients


def test_zero_minutes_means_never():
    alert = raise_alert("info")
    assert sweep(timedelta(days=30)) == 0
    alert.refresh_from_db()
    assert alert.escalated is False


def test_a_resolved_alert_is_never_escalated():
    alert = raise_alert("error")
    alert_resolve(alert=alert)
    assert sweep(timedelta(hours=2)) == 0
    assert alert_manager.escalate_alert_sync(alert.id) is False


def test_escalating_twice_at_once_notifies_once():
    alert = raise_alert("critical")
    assert alert_manager.escalate_alert_sync(alert.id) is True
    assert alert_manager.escalate_alert_sync(alert.id) is False
    assert len(escalations(alert)) == 1


def test_an_escalated_alert_whose_severity_rises_tells_the_new_severitys_escalation_recipients_at_once():
    alert = raise_alert("error")
    assert sweep(timedelta(minutes=61)) == 1  # escalated as an error: the lead was told
    with time_machine.travel(NOW + timedelta(minutes=70), tick=False):
        alert_manager.process_alert_sync(
            "job_failure", "critical", {"title": "ai_matching job failed", "message": "boom", "job_type": "ai_matching"}
        )
    alert.refresh_from_db()
    assert alert.severity == "critical"
    # Unresolved for 70 minutes, past critical's 15: the CTO hears it with the severity raise.
    assert alert.recipients == ["ops@example.com", "lead@example.com", "oncall@example.com", "cto@example.com"]
    raised = alert.deliveries.filter(kind=DeliveryKind.SEVERITY_RAISED).values_list("recipient", flat=True)
    assert sorted(raised) == ["cto@example.com", "lead@example.com", "oncall@example.com", "ops@example.com"]
    assert sweep(timedelta(minutes=90)) == 0  # still escalated once
    assert len(escalations(alert)) == 1


def test_a_severity_rise_before_escalation_leaves_the_escalation_to_the_sweep():
    alert = raise_alert("error")
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        alert_manager.process_alert_sync(
            "job_failure", "critical", {"title": "ai_matching job failed", "message": "boom", "job_type": "ai_matching"}
        )
    alert.refresh_from_db()
    assert "cto@example.com" not in alert.recipients
    assert sweep(timedelta(minutes=14)) == 0
    assert sweep(timedelta(minutes=15)) == 1  # critical's 15 minutes, counted from when it was raised
    assert escalations(alert) == [("cto@example.com", "Escalated: unresolved for 15 min")]


def test_the_escalation_email_says_it_is_an_escalation(deliveries_run):
    alert = raise_alert("error")
    mail.outbox.clear()
    with deliveries_run():
        sweep(timedelta(minutes=75))
    [email] = [m for m in mail.outbox if m.to == ["lead@example.com"]]
    assert email.subject == "[ERROR] Escalated: unresolved for 75 min: ai_matching job failed"
    assert f"https://monitor.example.com/alerts/{alert.id}/" in email.body


def test_the_periodic_tasks_are_scheduled_in_django_q2(django_db_setup):
    from django_q.models import Schedule

    from jobs.schedules import sync_schedules

    sync_schedules()
    schedules = dict(Schedule.objects.filter(name__startswith=PREFIX + "alerts.").values_list("name", "func"))
    assert schedules == {
        PREFIX + "alerts.deliveries": "alerts.tasks.dispatch_due_deliveries",
        PREFIX + "alerts.escalation": "alerts.tasks.escalate_due_alerts",
        PREFIX + "alerts.performance": "alerts.tasks.check_performance",
    }
