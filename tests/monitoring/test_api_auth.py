"""Who may call the API: sessions (with CSRF on unsafe methods), bearer tokens, permissions."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from alerts.manager import alert_manager
from jobs.models import Job, JobStatus, JobTypePause
from monitoring.models import ApiToken
from monitoring.tokens import api_token_create, api_tokens_revoke
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/api/monitoring/jobs"
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def submit(client, **kwargs):
    body = json.dumps({"job_type": "demo.sleep"})
    return client.post("/api/jobs", body, content_type="application/json", **kwargs)


def test_api_answers_are_never_cached(client, alice):
    """They carry job parameters and errors, and change by the second: no browser or proxy cache
    may keep them (a reviewer found the dashboard's pages marked so and the API's not)."""
    client.force_login(alice)
    for response in (client.get(LIST), client.get("/api/monitoring/jobs/nope"), Client().get(LIST)):
        assert "no-store" in response["Cache-Control"], response.status_code


# --- no credentials: 401 --------------------------------------------------------------


def test_anonymous_requests_are_401_with_a_hint(client):
    for response in (client.get(LIST), submit(client), client.post(f"/api/jobs/{JobFactory().id}/cancel")):
        assert response.status_code == 401
        assert response.json() == {
            "detail": "authentication required: log in, or send 'Authorization: Bearer <token>'",
            "errors": [],
        }
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("debug", [False, True])
def test_other_authorization_schemes_are_not_credentials_and_never_logged(client, alice, settings, caplog, debug):
    """Drill: with DEBUG on (make run) a token sent under another scheme was logged whole."""
    settings.DEBUG = debug
    token = api_token_create(user=alice, name="script")[1]
    for header in ("Basic YWxpY2U6c2VjcmV0", f"Token {token}", token):
        response = client.get(LIST, headers={"Authorization": header})

        assert response.status_code == 401
    assert token not in caplog.text and "YWxpY2U6c2VjcmV0" not in caplog.text


def test_a_token_after_two_spaces_is_still_the_token(client, alice):
    token = api_token_create(user=alice, name="script")[1]

    assert client.get(LIST, headers={"Authorization": f"Bearer  {token}"}).status_code == 200


@pytest.mark.parametrize("path", [LIST, "/api/openapi.json"])  # the schema answered the session
@pytest.mark.parametrize("token", ["jm_not-a-real-token", "something-else", "jm_" + "x" * 500, ""])
def test_an_unknown_token_is_401_even_with_a_logged_in_session(client, alice, token, path):
    client.force_login(alice)

    response = client.get(path, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or revoked API token"


def test_a_revoked_token_stops_working(client, alice):
    token, raw = api_token_create(user=alice, name="ci")
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get(LIST, headers=headers).status_code == 200

    api_tokens_revoke(tokens=ApiToken.objects.filter(id=token.id))

    response = client.get(LIST, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or revoked API token"


def test_an_expired_token_is_401_saying_when_it_expired(client, alice):
    """Not "invalid": the script's owner renews the token instead of hunting a typo in it."""
    with time_machine.travel(NOW, tick=False):
        token, raw = api_token_create(user=alice, name="ci", lifetime=timedelta(days=30))
    headers = {"Authorization": f"Bearer {raw}"}
    with time_machine.travel(NOW + timedelta(days=30) - timedelta(seconds=1), tick=False):
        assert client.get(LIST, headers=headers).status_code == 200

    with time_machine.travel(NOW + timedelta(days=30), tick=False):
        response = client.get(LIST, headers=headers)

    assert response.status_code == 401
    assert response.json()["detail"] == (
        "API token expired at 2026-12-29T03:00:00Z: it needs renewing (manage.py create_api_token makes a new one)"
    )
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    token.refresh_from_db()
    assert token.last_used_at == NOW + timedelta(days=30) - timedelta(seconds=1)  # the refused use is not one


def test_an_expired_token_is_refused_by_the_schema_too(client, alice):
    with time_machine.travel(NOW, tick=False):
        _, raw = api_token_create(user=alice, name="codegen", lifetime=timedelta(days=1))

    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        response = client.get("/api/openapi.json", headers={"Authorization": f"Bearer {raw}"})

    assert response.status_code == 401
    assert response.json()["detail"].startswith("API token expired at 2026-11-30T03:00:00Z")


def test_an_expiry_brought_forward_applies_at_the_next_request(client, alice):
    """Read from the token's row on every request: no process keeps an older expiry in a cache."""
    token, raw = api_token_create(user=alice, name="ci")
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get(LIST, headers=headers).status_code == 200

    ApiToken.objects.filter(id=token.id).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert client.get(LIST, headers=headers).json()["detail"].startswith("API token expired at")


def test_a_token_without_expiry_keeps_working(client, alice):
    with time_machine.travel(NOW, tick=False):
        _, raw = api_token_create(user=alice, name="forever", lifetime=None)

    with time_machine.travel(NOW + timedelta(days=3650), tick=False):
        assert client.get(LIST, headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_an_expired_token_of_a_deactivated_user_is_just_invalid(client, alice):
    with time_machine.travel(NOW, tick=False):
        _, raw = api_token_create(user=alice, name="ci", lifetime=timedelta(days=1))
    alice.is_active = False
    alice.save()

    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        response = client.get(LIST, headers={"Authorization": f"Bearer {raw}"})

    assert response.json()["detail"] == "invalid or revoked API token"


def test_the_expiry_costs_no_query(client, alice, django_assert_max_num_queries):
    """The token's row is read anyway: its expiry comes with it. A request with a valid token still
    runs the token's query (its user's permissions in it on Postgres, one more on SQLite) and the
    list's, as before expiry existed; an expired one stops at the token's."""
    JobFactory.create_batch(3)
    with time_machine.travel(NOW, tick=False):
        _, raw = api_token_create(user=alice, name="ci", lifetime=timedelta(days=1))
    headers = {"Authorization": f"Bearer {raw}"}
    with time_machine.travel(NOW, tick=False):
        client.get(LIST, headers=headers)  # last_used_at written: not again within the minute

    with django_assert_max_num_queries(3), time_machine.travel(NOW, tick=False):
        assert client.get(LIST, headers=headers).status_code == 200
    with django_assert_max_num_queries(1), time_machine.travel(NOW + timedelta(days=1), tick=False):
        assert client.get(LIST, headers=headers).status_code == 401


def test_the_token_of_a_deactivated_user_stops_working(client, alice, bearer):
    headers = bearer(alice)
    alice.is_active = False
    alice.save()

    assert client.get(LIST, headers=headers).status_code == 401


# --- permissions: 403 -----------------------------------------------------------------


def test_a_user_without_the_view_permission_is_403(client, nobody):
    client.force_login(nobody)

    response = client.get(LIST)

    assert response.status_code == 403
    assert response.json() == {"detail": "permission required: jobs.view_job", "errors": []}


def test_a_viewer_can_read_but_not_act(client, viewer):
    client.force_login(viewer)
    job = JobFactory()

    assert client.get(LIST).status_code == 200
    assert client.get(f"{LIST}/{job.id}").status_code == 200
    assert submit(client).json()["detail"] == "permission required: jobs.add_job"
    for action in ("cancel", "retry"):
        response = client.post(f"/api/jobs/{job.id}/{action}")
        assert (response.status_code, response.json()["detail"]) == (403, "permission required: jobs.change_job")


def test_permission_is_checked_before_the_body_is_read(client, viewer):
    client.force_login(viewer)

    response = client.post("/api/jobs", "{not json", content_type="application/json")

    assert response.status_code == 403


def test_a_token_acts_with_its_users_permissions(client, viewer, alice, bearer):
    job = JobFactory()

    assert client.get(LIST, headers=bearer(viewer)).status_code == 200
    assert client.post(f"/api/jobs/{job.id}/cancel", headers=bearer(viewer)).status_code == 403
    assert client.post(f"/api/jobs/{job.id}/cancel", headers=bearer(alice)).status_code == 200


# --- CSRF: sessions only ----------------------------------------------------------------


@pytest.fixture
def csrf_client(alice):
    """A browser: logged in, and Django's CSRF checks enforced (the test client skips them by default)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def test_a_session_post_without_the_csrf_token_is_refused(csrf_client):
    response = submit(csrf_client)

    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF check failed")
    assert not Job.objects.exists()


def test_a_session_post_with_the_csrf_token_is_accepted(csrf_client):
    csrf_client.get("/api/docs")  # the page sets the csrftoken cookie
    token = csrf_client.cookies["csrftoken"].value

    response = submit(csrf_client, headers={"X-CSRFToken": token})

    assert response.status_code == 201


def test_a_session_get_needs_no_csrf_token(csrf_client):
    assert csrf_client.get(LIST).status_code == 200


def test_a_token_needs_no_csrf_token(alice, bearer):
    client = Client(enforce_csrf_checks=True)

    response = submit(client, headers=bearer(alice))

    assert response.status_code == 201


def test_cancel_over_a_session_needs_the_csrf_token_too(csrf_client):
    job = JobFactory(status=JobStatus.QUEUED)

    assert csrf_client.post(f"/api/jobs/{job.id}/cancel").status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


# --- last_used_at -----------------------------------------------------------------------


def test_last_used_at_moves_at_most_once_a_minute(client, alice):
    token, raw = api_token_create(user=alice, name="ci")
    headers = {"Authorization": f"Bearer {raw}"}

    with time_machine.travel(NOW, tick=False):
        client.get(LIST, headers=headers)
    token.refresh_from_db()
    assert token.last_used_at == NOW

    with time_machine.travel(NOW + timedelta(seconds=59), tick=False):
        client.get(LIST, headers=headers)
    token.refresh_from_db()
    assert token.last_used_at == NOW

    with time_machine.travel(NOW + timedelta(seconds=61), tick=False):
        client.get(LIST, headers=headers)
    token.refresh_from_db()
    assert token.last_used_at == NOW + timedelta(seconds=61)


# --- docs and schema --------------------------------------------------------------------


def test_the_docs_page_needs_a_login(client, viewer):
    response = client.get("/api/docs")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/api/docs"

    client.force_login(viewer)
    response = client.get("/api/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn" not in page  # served by this site, never from a CDN


def test_the_docs_assets_are_served_locally(client):
    assert client.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_the_schema_needs_a_session_or_a_token(client, viewer, bearer):
    response = client.get("/api/openapi.json")
    assert response.status_code == 401
    assert response.json()["detail"].startswith("authentication required")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'  # as every 401 of the API (a drill: it had none)

    response = client.get("/api/openapi.json", headers={"Authorization": "Bearer jm_wrong"})
    assert (response.status_code, response.json()["detail"]) == (401, "invalid or revoked API token")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'

    response = client.get("/api/openapi.json", headers=bearer(viewer))
    assert response.status_code == 200
    assert "/api/monitoring/jobs/{job_id}" in response.json()["paths"]

    client.force_login(viewer)
    assert client.get("/api/openapi.json").status_code == 200


def test_the_schema_documents_both_ways_to_authenticate(client, viewer):
    client.force_login(viewer)

    schema = client.get("/api/openapi.json").json()

    assert schema["components"]["securitySchemes"] == {
        "ApiToken": {"type": "http", "scheme": "bearer"},
        "Session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
    }
    for path in schema["paths"].values():
        for operation in path.values():
            assert operation["security"] == [{"ApiToken": []}, {"Session": []}]
            assert {"401", "403"} <= set(operation["responses"])


def test_acting_needs_seeing_what_is_acted_on(client, bearer):
    """Cancel, retry, pause and resume answer with jobs and pauses; acknowledge and resolve with
    the alert: a token whose user may change but not view them is refused, told what is missing."""
    job = JobFactory(running=True)
    alert = alert_manager.process_alert_sync("system_health", "critical", {"title": "database down", "check": "db"})
    acts_blind = UserFactory(username="blind", permissions=["jobs.change_job", "alerts.change_alerthistory"])
    calls = {
        f"/api/jobs/{job.id}/cancel": "jobs.view_job",
        f"/api/jobs/{job.id}/retry": "jobs.view_job",
        "/api/jobs/pause": "jobs.view_job",
        "/api/jobs/resume": "jobs.view_job",
        f"/api/monitoring/alerts/{alert.id}/acknowledge": "alerts.view_alerthistory",
        f"/api/monitoring/alerts/{alert.id}/resolve": "alerts.view_alerthistory",
    }

    body = json.dumps({"job_type": "demo.sleep"})
    for url, missing in calls.items():
        response = client.post(url, body, "application/json", headers=bearer(acts_blind))
        assert (response.status_code, response.json()["detail"]) == (403, f"permission required: {missing}"), url

    job.refresh_from_db()
    alert.refresh_from_db()
    assert (job.status, job.cancel_requested_at) == ("running", None)
    assert (alert.resolved_at, alert.state.acknowledged_by) == (None, "")
    assert not JobTypePause.objects.exists()
