"""A database outage on a page is a 503 to try again shortly, not a 500 (the outage itself, on two
nodes and a real web server: tests/reliability/test_database_outage.py)."""

import pytest
from django.db import OperationalError
from django.test import Client

from monitoring import selectors

pytestmark = pytest.mark.django_db

OUTAGE = OperationalError('connection failed: FATAL:  database "jobs" is not currently accepting connections')


def unavailable(*args, **kwargs):
    raise OUTAGE


@pytest.fixture
def operator(alice):
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    return client


def test_a_page_whose_database_is_unreachable_answers_503(operator, monkeypatch):
    monkeypatch.setattr(selectors, "job_detail", unavailable)

    response = operator.get("/jobs/00000000-0000-0000-0000-000000000001/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"cannot reach its database" in response.content


def test_any_other_error_is_still_a_500(operator, monkeypatch):
    monkeypatch.setattr(selectors, "job_detail", lambda *args, **kwargs: 1 / 0)

    assert operator.get("/jobs/00000000-0000-0000-0000-000000000001/").status_code == 500


# --- admin changelists: filter values the database refuses -------------------------------------


@pytest.mark.django_db(transaction=True)  # a DataError would abort the test's transaction otherwise
@pytest.mark.parametrize(
    "url, named",
    [
        ("/admin/jobs/job/?status=a%00b", "status"),  # a list_filter's own parameter
        ("/admin/jobs/job/?job_type=a%00b", "job_type"),
        ("/admin/alerts/alerthistory/?severity=a%00b", "severity"),
        ("/admin/alerts/alerthistory/?alert_type=a%00b", "alert_type"),  # AlertTypeFilter
        ("/admin/alerts/alerthistory/?recipients=zz", "recipients"),  # an array column: malformed literal
        ("/admin/alerts/notificationdelivery/?status=a%00b", "status"),
        ("/admin/monitoring/jobexecutionlog/?event_type=a%00b", "event_type"),
        ("/admin/monitoring/systemhealthmetric/?metric_type=a%00b", "metric_type"),
        ("/admin/monitoring/apitoken/?name=a%00b", "name"),
        ("/admin/auth/user/?username=a%00b", "username"),
    ],
)
def test_an_admin_filter_value_the_database_refuses_is_a_400_naming_it(url, named):
    from django.db import connection

    from tests.factories import JobFactory, UserFactory

    if named == "recipients" and connection.vendor != "postgresql":
        pytest.skip("an array column on Postgres only (elsewhere any text is a valid value)")
    root = Client(raise_request_exception=False)
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    JobFactory(failed=True)

    response = root.get(url)

    assert response.status_code == 400, url
    body = response.content.decode()
    assert body.startswith(f"Invalid filter: {named}") and "SELECT" not in body and "LINE" not in body
    assert root.get(url.split("?")[0]).status_code == 200  # the list itself still works


@pytest.mark.django_db(transaction=True)
def test_an_admin_date_filter_past_the_calendar_is_a_400_naming_it():
    """Admin's date hierarchy turns ?triggered_at__year= into a datetime: a year too big for one
    raised OverflowError (which Django does not catch, as it does the ValueError of year 10000): a 500."""
    from tests.factories import UserFactory

    root = Client(raise_request_exception=False)
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    response = root.get("/admin/alerts/alerthistory/?triggered_at__year=99999999999999999999")

    assert response.status_code == 400
    assert response.content.decode().startswith("Invalid filter: triggered_at__year: a value does not fit")


@pytest.mark.django_db(transaction=True)
def test_an_admin_filter_on_a_related_id_past_any_integer_is_never_a_500():
    """Postgres compares it and finds nothing; SQLite cannot even bind it (OverflowError, a 500): a
    400 naming it there."""
    from django.db import connection

    from tests.factories import UserFactory

    root = Client(raise_request_exception=False)
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    response = root.get("/admin/monitoring/apitoken/?user=99999999999999999999")

    if connection.vendor == "postgresql":
        assert response.status_code == 200 and response.context["cl"].result_count == 0
    else:
        assert response.status_code == 400
        assert response.content.decode().startswith("Invalid filter: user: a value does not fit its field")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "url",
    [
        "/admin/jobs/jobtypepause/ai_matching%00/change/",  # a paused job type: its name is the id
        "/admin/jobs/jobtypepause/ai_matching%00/history/",
        "/admin/django_q/failure/abc%00/change/",
    ],
)
def test_an_admin_object_id_with_a_nul_is_a_400_not_a_500(url):
    """A text primary key went to the database as the URL spelled it: on Postgres a DataError (a drill)."""
    from tests.factories import UserFactory

    root = Client(raise_request_exception=False)
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    response = root.get(url)

    assert response.status_code == 400, url
    body = response.content.decode()
    assert body.startswith("Invalid URL: ") and body.endswith(": NUL characters are not allowed\n")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "url",
    [
        "/admin/monitoring/apitoken/?id__exact=99999999999999999999",
        "/admin/monitoring/apitoken/?user__id__exact=99999999999999999999",
        "/admin/jobs/job/?attempts__exact=99999999999999999999",
        "/admin/alerts/notificationdelivery/?id__exact=99999999999999999999",
    ],
)
def test_an_admin_filter_on_an_integer_past_any_integer_lists_nothing(url):
    """Django finds such a filter can match no row and runs no query (an empty list): a 500 once,
    raised by the check that compiles each list's query beforehand (a drill)."""
    from tests.factories import UserFactory

    root = Client(raise_request_exception=False)
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    response = root.get(url)

    assert response.status_code == 200, url
    assert response.context["cl"].result_count == 0


# --- admin actions: ticked rows by an id that is none ------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "url, action, ticked",
    [
        ("/admin/jobs/job/", "cancel_jobs", "not-a-uuid"),
        ("/admin/jobs/job/", "retry_jobs", ""),
        ("/admin/alerts/alerthistory/", "resolve_selected", "a\x00b"),
        ("/admin/monitoring/apitoken/", "revoke", "x"),
        ("/admin/monitoring/apitoken/", "revoke", "99999999999999999999"),  # past a bigint
        ("/admin/auth/user/", "delete_selected", "-"),
    ],
)
def test_an_admin_action_on_a_row_id_that_is_none_is_a_400_and_does_nothing(url, action, ticked):
    """The list's checkboxes send the rows' ids; admin hands whatever comes to the database
    (`pk__in`): a hand-made value was a 500 (ValidationError, ValueError, or the database's own)."""
    from jobs.models import JobStatus
    from tests.factories import JobFactory, UserFactory

    root = Client(raise_request_exception=False)
    root.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    job = JobFactory()

    response = root.post(url, {"action": action, "_selected_action": [str(job.id), ticked]})

    assert response.status_code == 400
    assert response.content.decode().startswith("Invalid selection: _selected_action: ")
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


# --- Content-Security-Policy ------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/jobs/", "/alerts/", "/api/docs", "/admin/", "/accounts/login/"])
def test_every_page_runs_only_the_sites_own_script_files(operator, url):
    """Markup that got through escaping (an onerror=, a <script>) runs nothing: no page needs an
    inline script, so none is allowed; nor may another site frame a page or take a form's post."""
    policy = operator.get(url)["Content-Security-Policy"]

    assert "script-src 'self' 'unsafe-eval';" in policy  # eval: htmx's poll conditions
    assert "'unsafe-inline'" not in policy
    assert {"frame-ancestors 'none'", "form-action 'self'", "object-src 'none'"} <= set(policy.split("; "))


def test_no_template_has_an_inline_script_or_event_handler():
    """What the policy above would block (the API docs' settings are JSON, which is not run)."""
    import re
    from pathlib import Path

    for template in Path(__file__).resolve().parents[2].glob("templates/**/*.html"):
        html = template.read_text()
        inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
        handlers = re.findall(r"\son[a-z]+=", html)
        assert not inline and not handlers, template
