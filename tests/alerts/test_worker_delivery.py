"""End to end on a real django-q2 cluster: a job fails for good in a worker, the alert is raised
there, and its notification is delivered by another django-q2 task to a real webhook."""

import pytest

import tests.jobs.executors  # noqa: F401  (the test.raise job type)
from alerts.manager import alert_manager
from alerts.models import AlertHistory, DeliveryStatus, NotificationDelivery
from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from tests.conftest import running_cluster, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_job_failing_in_a_worker_is_alerted_and_delivered(webhook_server, alert_settings, fast_jobs):
    alert_settings["RECIPIENTS"]["error"] = [f"{webhook_server.url}/hook"]
    with running_cluster(workers=2):
        job = job_manager.submit_job("test.raise", {"kind": "data", "message": "candidate 7 has no email"})
        delivered = wait_for(
            lambda: NotificationDelivery.objects.filter(status=DeliveryStatus.SENT).first(),
            timeout=30,
            message="the alert's notification to be delivered",
        )

    alert = AlertHistory.objects.get()
    assert (alert.job_id, alert.notification_sent, delivered.alert_id) == (job.id, True, alert.id)
    [request] = webhook_server.requests
    assert request["json"]["alert"]["job_id"] == str(job.id)
    assert request["json"]["alert"]["error"] == "ValueError: candidate 7 has no email (data)"


def test_an_alert_raised_behind_a_backlog_is_delivered_long_before_the_backlog_is_worked_off(
    webhook_server, alert_settings, fast_jobs
):
    alert_settings["RECIPIENTS"]["critical"] = [f"{webhook_server.url}/hook"]
    with running_cluster(workers=2):
        backlog = [job_manager.submit_job("demo.sleep", {"seconds": 1, "steps": 1}).id for _ in range(20)]
        wait_for(lambda: Job.objects.filter(status=JobStatus.RUNNING).count() == 2, message="both workers busy")
        alert_manager.process_alert_sync("system_health", "critical", {"title": "database down", "check": "database"})
        wait_for(
            lambda: NotificationDelivery.objects.filter(status=DeliveryStatus.SENT).exists(),
            timeout=30,
            message="the notification to be delivered",
        )
        finished_by_then = Job.objects.filter(id__in=backlog, status=JobStatus.COMPLETED).count()

    # Ahead of it were only the jobs the node had already taken (2 running, 4 prefetched).
    assert finished_by_then <= 8, f"{finished_by_then} of the 20 backlog jobs finished before the delivery"
