"""End to end on a real django-q2 cluster: a job fails for good in a worker, the alert is raised
there, and its notification is delivered by another django-q2 task to a real webhook."""

import pytest

import tests.jobs.executors  # noqa: F401  (the test.raise job type)
from alerts.models import AlertHistory, DeliveryStatus, NotificationDelivery
from jobs.manager import job_manager
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
