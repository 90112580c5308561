"""A job's alerts need alerts.view_alerthistory, on the job's page and in the API, as everywhere else."""

import pytest

from tests.factories import AlertHistoryFactory, JobFactory, UserFactory

ALERT_MARKER = "ALERT-ONLY-7c1e"


@pytest.fixture
def job_viewer(db):
    """May see jobs, not alerts."""
    return UserFactory(username="jobs-only", permissions=["jobs.view_job"])


@pytest.fixture
def job_with_alert(db):
    job = JobFactory(failed=True)
    AlertHistoryFactory(job=job, title=f"{ALERT_MARKER} title", message=f"{ALERT_MARKER} message")
    return job


def test_job_page_hides_alerts_from_a_user_without_the_alerts_permission(client, job_viewer, job_with_alert):
    client.force_login(job_viewer)
    assert client.get("/alerts/").status_code == 403
    response = client.get(f"/jobs/{job_with_alert.id}/")
    assert response.status_code == 200
    assert ALERT_MARKER not in response.content.decode()


def test_job_api_hides_alerts_from_a_token_without_the_alerts_permission(client, job_viewer, job_with_alert, bearer):
    headers = {"HTTP_AUTHORIZATION": bearer(job_viewer)["Authorization"]}
    assert client.get("/api/monitoring/alerts", **headers).status_code == 403
    response = client.get(f"/api/monitoring/jobs/{job_with_alert.id}", **headers)
    assert response.status_code == 200
    assert ALERT_MARKER not in response.content.decode()
    assert response.json()["alerts"] == []


def test_with_the_permission_the_alerts_are_there(client, alice, job_with_alert):
    client.force_login(alice)
    assert ALERT_MARKER in client.get(f"/jobs/{job_with_alert.id}/").content.decode()
    assert ALERT_MARKER in client.get(f"/api/monitoring/jobs/{job_with_alert.id}").content.decode()
