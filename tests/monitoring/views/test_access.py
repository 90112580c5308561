"""Who gets in: login everywhere, the view permission for pages, and the login page itself."""

import pytest
from django.templatetags.static import static

from alerts.manager import alert_manager
from jobs.models import JobTypePause
from tests.factories import JobFactory, UserFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db


@pytest.fixture
def job():
    return JobFactory()


@pytest.fixture
def pages(job):
    return ["/", "/jobs/", "/jobs/?view=finished", f"/jobs/{job.id}/"]


def test_every_page_sends_an_anonymous_visitor_to_the_login_page(client, pages):
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next=/"), url


def test_an_expired_session_sends_the_whole_page_to_login_instead_of_swapping_it_into_a_table(client):
    page = "http://testserver/jobs/?status=running"
    response = client.get("/jobs/", headers={**htmx("job-rows"), "HX-Current-URL": page})
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/jobs/%3Fstatus%3Drunning"


def test_an_expired_session_whose_htmx_page_is_no_url_goes_to_login_for_the_request_itself(client):
    """HX-Current-URL comes from the browser; a hand-made one that is no URL at all ("http://[",
    an unclosed IPv6 host) was a 500 for anyone, logged in or not."""
    response = client.get("/jobs/?status=running", headers={**htmx("job-rows"), "HX-Current-URL": "http://["})
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/jobs/%3Fstatus%3Drunning"


def test_a_user_without_the_view_permission_gets_a_403_page_naming_it(client, nobody, pages):
    client.force_login(nobody)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"jobs.view_job" in response.content
        assert (
            b"/jobs/" not in response.content.split(b'<main id="main" tabindex="-1">')[0]
        )  # no nav links to pages they cannot see


@pytest.fixture
def alert():
    from tests.factories import AlertHistoryFactory

    return AlertHistoryFactory()


@pytest.fixture
def guarded_pages(alert):
    """Each page of the second part and the permission it needs."""
    return {
        "/performance/": "monitoring.view_jobexecutionlog",
        "/errors/": "monitoring.view_jobexecutionlog",
        "/health/": "monitoring.view_systemhealthmetric",
        "/alerts/": "alerts.view_alerthistory",
        f"/alerts/{alert.id}/": "alerts.view_alerthistory",
    }


def test_the_other_pages_need_login_and_their_own_permission(client, guarded_pages):
    for url, permission in guarded_pages.items():
        assert client.get(url)["Location"].startswith("/accounts/login/?next=/"), url
    client.force_login(UserFactory(permissions=["jobs.view_job"]))
    for url, permission in guarded_pages.items():
        response = client.get(url)
        assert response.status_code == 403, url
        assert permission.encode() in response.content, url
        app, codename = permission.split(".")
        client.force_login(UserFactory(username=f"only-{codename}", permissions=[permission]))
        assert client.get(url).status_code == 200, url
        client.force_login(UserFactory(permissions=["jobs.view_job"]))


def test_the_navigation_shows_the_pages_a_user_may_open(client, alice, viewer):
    client.force_login(alice)
    nav = client.get("/").content.decode().split('<nav class="mainnav"')[1].split("</nav>")[0]
    assert [part.split('"')[0] for part in nav.split('href="')[1:]] == [
        "/",
        "/jobs/",
        "/performance/",
        "/errors/",
        "/health/",
        "/alerts/",
    ]
    client.force_login(UserFactory(username="ops-health", permissions=["monitoring.view_systemhealthmetric"]))
    nav = client.get("/health/").content.decode().split('<nav class="mainnav"')[1].split("</nav>")[0]
    assert 'href="/health/"' in nav and 'href="/jobs/"' not in nav and 'href="/alerts/"' not in nav


def test_a_user_who_may_not_see_jobs_lands_on_the_first_page_they_may_open(client):
    """Not on a 403 right after logging in: an on-call login allowed only alerts, say."""
    client.force_login(UserFactory(username="oncall", permissions=["alerts.view_alerthistory"]))
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/alerts/"
    client.force_login(UserFactory(permissions=["alerts.view_alerthistory", "monitoring.view_systemhealthmetric"]))
    assert client.get("/")["Location"] == "/health/"


def test_logging_in_lands_on_the_page_asked_for(client, alice):
    page = client.get("/accounts/login/?next=/jobs/")
    assert page.status_code == 200
    assert b'name="next" value="/jobs/"' in page.content

    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "correct horse battery staple", "next": "/jobs/"},
    )
    assert response.status_code == 302 and response["Location"] == "/jobs/"
    assert client.get("/jobs/").status_code == 200


def test_a_wrong_password_says_so(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_logging_out_is_a_post(alice_client):
    assert alice_client.get("/accounts/logout/").status_code == 405
    response = alice_client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert alice_client.get("/").status_code == 302


def test_htmx_is_served_from_the_installed_package_with_debug_off(alice_client, settings):
    assert settings.DEBUG is False
    page = alice_client.get("/").content.decode()
    htmx_url = static("django_htmx/htmx-2.min.js")
    assert f'<script src="{htmx_url}" defer></script>' in page
    assert "://" not in "".join(line for line in page.splitlines() if "<script" in line or "stylesheet" in line)
    for url in (htmx_url, static("monitoring/dashboard.css"), static("monitoring/dashboard.js")):
        response = alice_client.get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content), url


def test_with_debug_on_no_script_replaces_the_page_with_an_error_answer(alice_client, settings):
    """django-htmx's debug script (added by {% htmx_script %} when DEBUG is on) would put a filter
    error's 400 fragment in place of the whole page; `make run` runs with DEBUG on."""
    settings.DEBUG = True
    page = alice_client.get("/jobs/").content.decode()
    assert static("django_htmx/htmx-2.min.js") in page
    assert "django-htmx.js" not in page


def test_htmx_requests_carry_the_csrf_token_and_partials_never_stand_in_for_pages(alice_client):
    response = alice_client.get("/")
    token = response.context["csrf_token"]
    assert f"""<body hx-headers='{{"X-CSRFToken": "{token}"}}'>""" in response.content.decode()
    # A cache or the back button must not serve a partial where the full page was asked for.
    assert "HX-Request" in response["Vary"] and "HX-Target" in response["Vary"]
    assert "no-store" in response["Cache-Control"]


def test_acting_needs_seeing_what_is_acted_on(client):
    """Each action answers with what it acted on (the job's page, the list, the alert): a user
    who may change jobs or alerts but not view them is refused, told which permission is missing."""
    job = JobFactory(job_type="demo.fail", failed=True)
    alert = alert_manager.process_alert_sync("system_health", "critical", {"title": "database down", "check": "db"})
    actions = {
        f"/jobs/{job.id}/retry/": "jobs.view_job",
        f"/jobs/{job.id}/cancel/": "jobs.view_job",
        "/jobs/retry/": "jobs.view_job",
        "/jobs/pause/": "jobs.view_job",
        "/jobs/resume/": "jobs.view_job",
        f"/alerts/{alert.id}/acknowledge/": "alerts.view_alerthistory",
        f"/alerts/{alert.id}/resolve/": "alerts.view_alerthistory",
    }
    client.force_login(UserFactory(permissions=["jobs.change_job", "alerts.change_alerthistory"]))

    for url, missing in actions.items():
        form = {"job_type": "demo.fail", "view": "finished", "status": "failed", "minutes": "30"}
        response = client.post(url, form)
        assert response.status_code == 403, url
        assert missing.encode() in response.content, url

    job.refresh_from_db()
    alert.refresh_from_db()
    assert (job.status, job.attempts) == ("failed", 3)
    assert (alert.resolved_at, alert.state.acknowledged_by) == (None, "")
    assert not JobTypePause.objects.exists()
