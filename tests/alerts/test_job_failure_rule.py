"""The job failure rule: a job that failed for good raises an alert, immediately."""

import pytest
from django.db import OperationalError

import tests.jobs.executors  # noqa: F401  (the test.raise job type)
from alerts.models import AlertHistory, AlertType, DeliveryKind, NotificationDelivery
from jobs.manager import job_manager
from jobs.models import JobStatus
from jobs.signals import job_finished
from jobs.tasks import run_job
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def finish(job):
    job_finished.send(sender=type(job), job=job)


def test_a_job_that_failed_for_good_raises_an_error_alert_naming_job_and_error():
    job = JobFactory(failed=True, job_type="ai_matching")
    finish(job)

    alert = AlertHistory.objects.get()
    assert (alert.alert_type, alert.severity, alert.job_id) == (AlertType.JOB_FAILURE, "error", job.id)
    assert alert.title == "ai_matching job failed"
    assert f"Job {job.id} (ai_matching) failed after 3 of 3 attempts" in alert.message
    assert alert.recipients == ["ops@example.com"]
    assert alert.notification_sent is False  # queued, not yet delivered
    assert alert.state.error_summary == "httpx.ConnectTimeout: timed out (transient)"
    assert alert.state.fingerprint == "job_failure:ai_matching/transient"
    assert list(NotificationDelivery.objects.values_list("kind", "recipient", "status")) == [
        (DeliveryKind.ALERT, "ops@example.com", "pending")
    ]


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.RETRYING, JobStatus.RUNNING])
def test_jobs_that_did_not_fail_for_good_raise_nothing(status):
    finish(JobFactory(status=status))
    assert not AlertHistory.objects.exists()


def test_the_rule_can_be_switched_off_or_ignore_job_types(alert_settings):
    alert_settings["RULES"] = {"job_failure": {"enabled": False}}
    finish(JobFactory(failed=True))
    assert not AlertHistory.objects.exists()

    alert_settings["RULES"] = {"job_failure": {"ignore_job_types": ["demo.fail"]}}
    finish(JobFactory(failed=True, job_type="demo.fail"))
    assert not AlertHistory.objects.exists()
    finish(JobFactory(failed=True, job_type="ai_matching"))
    assert AlertHistory.objects.get().job.job_type == "ai_matching"


def test_severity_follows_the_error_class_when_configured(alert_settings):
    alert_settings["RULES"] = {"job_failure": {"severity_by_error_class": {"configuration": "critical"}}}
    job = JobFactory(
        failed=True, error_class="configuration", last_error={"type": "ImproperlyConfigured", "message": "no key"}
    )
    finish(job)
    alert = AlertHistory.objects.get()
    assert alert.severity == "critical"
    assert alert.recipients == ["ops@example.com", "oncall@example.com"]


def test_a_real_failing_job_raises_its_alert_once_its_outcome_is_committed(django_capture_on_commit_callbacks):
    job = job_manager.submit_job("test.raise", {"kind": "data", "message": "candidate 42 has no email"})
    with django_capture_on_commit_callbacks(execute=True):
        run_job(str(job.id), 1)  # a data error is not retried: failed for good

    alert = AlertHistory.objects.get()
    assert alert.job_id == job.id
    assert alert.state.error_summary == "ValueError: candidate 42 has no email (data)"


def test_a_retryable_failure_with_attempts_left_raises_nothing(django_capture_on_commit_callbacks):
    job = job_manager.submit_job("test.raise", {"kind": "transient"})
    with django_capture_on_commit_callbacks(execute=True):
        run_job(str(job.id), 1)
    job.refresh_from_db()
    assert job.status == JobStatus.RETRYING
    assert not AlertHistory.objects.exists()


def test_a_broken_alerting_path_never_breaks_the_job(monkeypatch, django_capture_on_commit_callbacks, caplog):
    from alerts.manager import alert_manager

    def explode(*args, **kwargs):
        raise RuntimeError("alerting is broken")

    monkeypatch.setattr(alert_manager, "process_alert_sync", explode)
    job = job_manager.submit_job("test.raise", {"kind": "data"})
    with django_capture_on_commit_callbacks(execute=True):
        assert run_job(str(job.id), 1)["ran"] is True
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.logs.filter(event_type="error").exists()
    assert "a job_finished receiver failed for job" in caplog.text


def test_a_failure_alert_is_written_with_the_outcome_so_a_database_blip_cannot_lose_it(monkeypatch):
    from alerts.manager import AlertManager

    real = AlertManager.process_alert_sync
    calls = []

    def blip_once(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 1:  # the database drops out just as the alert is written
            raise OperationalError("server closed the connection unexpectedly")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AlertManager, "process_alert_sync", blip_once)
    job = job_manager.submit_job("test.raise", {"kind": "data"})  # a data error: failed for good
    assert run_job(str(job.id), 1)["ran"] is True

    # The whole outcome waited in memory and was written again once the database answered:
    # the job's failure and its alert together, each once.
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert calls == ["job_failure", "job_failure"]
    assert AlertHistory.objects.get().job_id == job.id
    assert job.logs.filter(event_type="error").count() == 1
