"""Every URL of the dashboard, admin and API, enumerated from the URL resolver (a URL added later is
covered without touching this file), tried anonymously, by users without permissions, with a
revoked or expired API token and with a wrong CSRF token: each is refused (401/403, a redirect to a login
page, or 404/405 for what does not exist or does not take the method), and no refusal carries
any data: every row in the database holds a marker that must not appear in a refused response.

Each URL is tried with GET and with POST (the test client's POST has no CSRF problem, so it
isolates the access check); a URL must refuse at least one of them for a reason other than the
method, so a POST-only URL is really tried. Public pages (login, logout) get a GET only.
"""

import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task

from alerts.models import AlertHistory, NotificationDelivery
from jobs.models import Job, JobStatus, JobTypePause
from monitoring.models import ApiToken, JobExecutionLog, SystemHealthMetric
from monitoring.tokens import api_token_create, api_tokens_revoke
from tests.factories import (
    AlertHistoryFactory,
    JobExecutionLogFactory,
    JobFactory,
    SystemHealthMetricFactory,
    UserFactory,
)

pytestmark = [pytest.mark.reliability, pytest.mark.django_db]

MARKER = "SECRET-7f3a9c"
FORGED = {"csrfmiddlewaretoken": "b" * 32, "status": "cancelled", "action": "delete_selected", "title": "x"}

# Pages anyone may load, and why: each holds no data.
PUBLIC = {
    "accounts/login/": "the dashboard's login form",
    "accounts/logout/": "logging out (POST): harmless to anyone",
    "admin/login/": "admin's login form",
    "admin/logout/": "logging out of admin: harmless to anyone",
    "api/": "ninja's API root: a 404 in the API's format",
    "api/no-such-endpoint": "unknown API paths: a 404 in the API's format",
    "demo/ai-matching/health": "the simulated AI service: a 404 unless DEMO_MODE",
    "demo/ai-matching/match": "the simulated AI service: a 404 unless DEMO_MODE, then its own key",
}
# Pages a logged-in user without permissions may load, and why: they describe the software, not its data.
NO_PERMISSION_NEEDED = {
    "api/docs": "the API's documentation",
    "api/openapi.json": "the API's schema",
    "admin/": "admin's index, which lists only what the user may see: nothing",
    "admin/password_change/": "the user's own password form",
    "admin/password_change/done/": "its confirmation",
    "admin/jsi18n/": "admin's JavaScript translations",
}

LOGIN_REDIRECT = re.compile(r"^/(accounts|admin)/login/\?next=")
PARAMETER = re.compile(r"<(?:\w+:)?(?P<name>\w+)>|\(\?P<(?P<regex_name>\w+)>[^)]*\)")


def routes(resolver=None, prefix=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


@pytest.fixture
def data(db):
    """A row of every model, each carrying the marker; returns the values URL parameters take."""
    owner = UserFactory(username="owner", email=f"{MARKER}@example.com")
    job = JobFactory(running=True, parameters={"note": MARKER}, message=MARKER, worker=f"{MARKER}:1")
    log = JobExecutionLogFactory(job=job, message=MARKER)
    metric = SystemHealthMetricFactory(details={"note": MARKER})
    alert = AlertHistoryFactory(job=job, title=MARKER, message=MARKER)
    token, _ = api_token_create(user=owner, name=MARKER)
    delivery = NotificationDelivery.objects.create(alert=alert, recipient=f"{MARKER}@example.com", kind="alert")
    now = timezone.now()
    task = dict(func="math.floor", started=now, stopped=now, name=MARKER)
    return {
        "job_id": job.id,
        "alert_id": alert.id,
        "content_type_id": ContentType.objects.get_for_model(Job).id,
        "app_label": "jobs",
        "url": "no-such-page/",
        "path": "no-such-endpoint",
        "objects": {
            "jobs/job": job.id,
            "jobs/jobtypepause": JobTypePause.objects.create(job_type=MARKER, paused_by=MARKER, reason=MARKER).pk,
            "monitoring/jobexecutionlog": log.id,
            "monitoring/systemhealthmetric": metric.id,
            "monitoring/apitoken": token.id,
            "alerts/alerthistory": alert.id,
            "alerts/notificationdelivery": delivery.id,
            "auth/user": owner.id,
            "auth/group": Group.objects.create(name=MARKER).id,
            "django_q/schedule": Schedule.objects.create(name=MARKER, func="math.floor").id,
            "django_q/success": Task.objects.create(id="a" * 32, success=True, **task).id,
            "django_q/failure": Task.objects.create(id="b" * 32, success=False, **task).id,
            "django_q/ormq": OrmQ.objects.create(key=MARKER, payload=MARKER, lock=now).id,
        },
    }


def concrete(route: str, data: dict) -> str:
    """A URL for the route, its parameters filled with real rows' ids."""
    model = re.match(r"admin/(\w+/\w+)/", route)

    def value(match):
        name = match["name"] or match["regex_name"]
        if name in ("object_id", "id"):
            return str(data["objects"][model[1]] if model else data["job_id"])
        return str(data[name])

    return "/" + PARAMETER.sub(value, route).replace("^", "").replace("$", "")


def all_urls(data) -> list[str]:
    urls = sorted({concrete(route, data) for route in routes()})
    assert len(urls) > 90  # the resolver really was walked (dashboard, admin for each model, API)
    return urls


def face(url: str) -> str:
    if url.lstrip("/") in PUBLIC:
        return "public"
    for prefix, name in (("/admin/", "admin"), ("/api/", "api"), ("/metrics", "metrics")):
        if url.startswith(prefix):
            return name
    return "dashboard"


def leaks(response) -> bool:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return MARKER.encode() in content


def assert_refused(client: Client, urls, expected, *, redirects=LOGIN_REDIRECT, methods=("get", "post"), **request):
    """Each URL answers each method with a status `expected(url)` allows (a redirect only to where
    `redirects` matches), refuses at least one method for a reason other than the method, and
    leaks no data."""
    wrong = []
    for url in urls:
        statuses = []
        # Public pages get a GET only: a POST to a logout page would end the session under test.
        for method in ("get",) if face(url) == "public" and len(methods) > 1 else methods:
            response = getattr(client, method)(url, **({"data": FORGED} if method == "post" else {}), **request)
            status, location = response.status_code, response.get("Location", "")
            statuses.append(status)
            fine = status in expected(url)
            if status == 302 and face(url) != "public":
                fine = fine and redirects.match(location) is not None
            if not fine or leaks(response):
                wrong.append(f"{method.upper()} {url}: {status} {location}{' LEAKS DATA' if leaks(response) else ''}")
        if len(statuses) > 1 and set(statuses) == {405}:
            wrong.append(f"{url}: no method tried got past the method check")
    assert not wrong, "\n".join(["not refused as expected:", *wrong])


def test_every_url_refuses_anonymous_visitors(client, data, figures):
    expected = {
        "dashboard": {302, 405},  # to the login page
        "admin": {302, 405},  # to admin's login page
        "api": {401, 405},
        "metrics": {401, 405},
        "public": {200, 302, 404, 405},
    }
    # The API's docs page sends browsers to the login page rather than answer 401.
    assert_refused(client, all_urls(data), lambda url: {302, 405} if url == "/api/docs" else expected[face(url)])
    faces = [face(url) for url in all_urls(data)]
    figures(
        f"{len(faces)} URLs from the resolver ("
        + ", ".join(f"{faces.count(name)} {name}" for name in ("dashboard", "admin", "api", "metrics", "public"))
        + "), each tried anonymously, without permissions, as staff without permissions (admin), with a revoked"
        " or expired token and with a wrong CSRF token"
    )


def test_every_url_refuses_a_user_without_permissions(client, data):
    client.force_login(UserFactory(username="nobody"))
    expected = {
        "dashboard": {403, 405},
        "admin": {302, 405},  # not staff: to admin's login page
        "api": {403, 405},
        "metrics": {403, 405},
        "public": {200, 302, 404, 405},  # the login pages send a logged-in user on
    }
    described = {url for url in NO_PERMISSION_NEEDED if url.startswith("api/")}  # the API's docs and schema
    assert_refused(
        client, all_urls(data), lambda url: {200, 405} if url.lstrip("/") in described else expected[face(url)]
    )


def test_every_admin_url_refuses_a_staff_member_without_permissions(client, data):
    client.force_login(UserFactory(username="staff", is_staff=True))
    urls = [url for url in all_urls(data) if face(url) == "admin"]
    # 403 for each model's pages, 404 for an app or page they may not see; /admin/<model>/<id>/
    # redirects to that object's change page (tried here too), and a missing object to the index.
    assert_refused(
        client,
        urls,
        lambda url: {200, 302, 405} if url.lstrip("/") in NO_PERMISSION_NEEDED else {302, 403, 404, 405},
        redirects=re.compile(r"^/admin/"),
    )


@pytest.mark.parametrize("ended", ["revoked", "expired"])
def test_every_url_refuses_a_revoked_or_expired_api_token(client, data, ended):
    owner = UserFactory(username="root", is_staff=True, is_superuser=True)
    _, raw = api_token_create(user=owner, name=ended)
    if ended == "revoked":
        api_tokens_revoke(tokens=ApiToken.objects.filter(name=ended))
    else:
        ApiToken.objects.filter(name=ended).update(expires_at=timezone.now())
    expected = {
        "dashboard": {302, 405},
        "admin": {302, 405},
        "api": {401, 405},
        "metrics": {401, 405},
        "public": {200, 302, 404, 405},
    }
    assert_refused(
        client,
        all_urls(data),
        lambda url: {302, 405} if url == "/api/docs" else expected[face(url)],
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )


def test_every_url_refuses_a_post_with_a_wrong_csrf_token(data):
    """A superuser's session, as a forged cross-site form would ride on: every POST is refused
    (403), or meets a URL that takes no POST (405) or does not exist (404), and changes nothing."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    client.cookies["csrftoken"] = "a" * 32

    assert_refused(client, all_urls(data), lambda url: {403, 404, 405}, methods=("post",), HTTP_X_CSRFTOKEN="b" * 32)

    assert Job.objects.get(id=data["job_id"]).status == JobStatus.RUNNING
    counts = [model.objects.count() for model in (Job, JobExecutionLog, SystemHealthMetric, AlertHistory, Group)]
    assert counts == [1, 1, 1, 1, 1]


def test_the_same_urls_answer_with_the_right_credentials(data, alice, bearer):
    """So the refusals above are about the credentials, not about broken URLs."""
    session = Client()
    session.force_login(alice)
    assert MARKER.encode() in session.get(f"/jobs/{data['job_id']}/").content
    assert MARKER in session.get(f"/api/monitoring/jobs/{data['job_id']}").content.decode()
    assert Client().get("/api/monitoring/jobs", HTTP_AUTHORIZATION=bearer(alice)["Authorization"]).status_code == 200
    root = Client()
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    for model, object_id in data["objects"].items():
        response = root.get(f"/admin/{model}/{object_id}/change/")
        assert response.status_code == 200 and MARKER.encode() in response.content, model
