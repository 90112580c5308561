"""Hostile text as job parameters (Python and API), as error messages (an executor raising them) and as
alert texts: stored intact, except what PostgreSQL cannot hold (NUL and lone surrogates become
U+FFFD, on every database alike); bounded where it would bloat the tables; rendered escaped in
the dashboard and admin. The limits are listed in docs/reliability.md.
"""

import json
from html.parser import HTMLParser

import pytest
from django.test import Client

from alerts.manager import alert_manager
from alerts.models import AlertHistory
from jobs.errors import MAX_MESSAGE_CHARS, MAX_TRACEBACK_CHARS
from jobs.manager import job_manager
from jobs.models import Job, JobRetryHistory, JobStatus
from jobs.payloads import MAX_JSON_BYTES, MAX_PARAMETERS_BYTES, to_json_value
from jobs.registry import InvalidJobParameters
from monitoring.models import EventType, JobExecutionLog
from tests.factories import JobFactory, UserFactory

pytestmark = [pytest.mark.reliability, pytest.mark.django_db]

MARKUP = "<script>alert(1)</script><img src=x onerror=alert(2)>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
HOSTILE = {
    "markup": MARKUP,
    "sql": "'; DROP TABLE jobs; -- \" OR 1=1",
    "unicode": "Zürich 東京 👩‍💻 \u202eevil\u202c e\u0301",
    "control": "\x1b[31mred\x07\r\n\ttab",
    "template": "{{ request.user }} {% debug %} ${7*7}",
    MARKUP: ["keys too", {"nested": MARKUP}],
}
# PostgreSQL refuses these in text and JSONB: replaced, and nothing else is touched.
UNSTORABLE = {"nul": "a\x00b", "surrogate": "a\ud800b"}
STORED_AS = {"nul": "a\ufffdb", "surrogate": "a\ufffdb"}


@pytest.fixture
def root(db):
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def nested(depth: int):
    value = "bottom"
    for _ in range(depth):
        value = {"down": value}
    return value


def pages_showing(job: Job) -> list[str]:
    log = JobExecutionLog.objects.filter(job=job, event_type=EventType.ERROR).first() or job.logs.first()
    alert = AlertHistory.objects.filter(job=job).first()
    pages = [
        "/",
        "/jobs/",
        f"/jobs/{job.id}/",
        "/errors/",
        f"/admin/jobs/job/?q={job.id}",
        f"/admin/jobs/job/{job.id}/change/",
        "/admin/monitoring/jobexecutionlog/",
        f"/admin/monitoring/jobexecutionlog/{log.id}/change/",
    ]
    if alert:
        pages += alert_pages(alert)
    return pages


def alert_pages(alert) -> list[str]:
    return [
        "/alerts/",
        f"/alerts/{alert.id}/",
        "/admin/alerts/alerthistory/",
        f"/admin/alerts/alerthistory/{alert.id}/change/",
    ]


def assert_rendered_escaped(client: Client, pages: list[str]) -> None:
    shown = 0
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert "<script>alert(1)" not in html and "<img src=x" not in html, f"{page} renders markup"
        shown += ESCAPED in html
    assert shown >= len(pages) // 2  # the text is there, escaped, on most of them


# --- parameters ----------------------------------------------------------------------------------


def test_hostile_parameters_are_stored_and_returned_intact(django_capture_on_commit_callbacks):
    job = job_manager.submit_job("test.echo", {**HOSTILE, **UNSTORABLE})
    job_manager.execute_job_sync(job.id, 1)

    job.refresh_from_db()
    assert job.parameters == {**HOSTILE, **STORED_AS}
    assert job.result == {"echo": {**HOSTILE, **STORED_AS}}


def test_hostile_parameters_through_the_api_are_stored_intact(client, alice):
    client.force_login(alice)
    body = json.dumps({"job_type": "test.echo", "parameters": {**HOSTILE, **UNSTORABLE}})
    assert "\\u0000" in body and "\\ud800" in body  # sent as JSON escapes, as a client would

    response = client.post("/api/jobs", body, content_type="application/json")

    assert response.status_code == 201
    assert Job.objects.get(id=response.json()["id"]).parameters == {**HOSTILE, **STORED_AS}


def test_a_body_that_is_not_utf8_is_refused_with_a_message(client, alice):
    client.force_login(alice)
    body = b'{"job_type": "test.echo", "parameters": {"a": "\xff\xfe"}}'
    response = client.post("/api/jobs", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("request body is not valid JSON")


def test_parameters_past_the_limits_are_refused_naming_the_field():
    one_megabyte = "x" * 1_000_000
    for parameters, message in [
        ({"cv": one_megabyte}, f"more than the {MAX_PARAMETERS_BYTES} allowed"),
        (nested(33), "nested deeper than 32 levels"),
        (nested(10_000), "nested deeper than 32 levels"),  # past Python's own recursion limit
    ]:
        with pytest.raises(InvalidJobParameters) as refused:
            job_manager.submit_job("test.echo", parameters)
        assert refused.value.errors[0]["field"] == "parameters"
        assert message in refused.value.errors[0]["message"]
    assert not Job.objects.exists()


def test_a_result_too_big_to_keep_is_summarised():
    job = job_manager.submit_job("test.echo", {"cv": "x" * 200_000})  # under the parameters' limit
    job_manager.execute_job_sync(job.id, 1)

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert job.result["truncated"] is True
    assert f"more than the {MAX_JSON_BYTES} allowed" in job.result["reason"]
    assert len(job.result["preview"]) <= 1_000


def test_a_result_nested_too_deep_for_python_is_summarised_with_a_shallow_preview():
    """Drill: a result nested 2,000 deep beside a flat value was previewed as just "dict"."""
    result = {"summary": "12 candidates matched", "tree": nested(2_000)}

    stored = to_json_value(result)

    assert stored["truncated"] is True and "nested deeper" in stored["reason"]
    assert stored["preview"].startswith("{'summary': '12 candidates matched', 'tree': {")
    assert stored["preview"].endswith("{'down': {...}}}}}}}}}")


# --- error messages ------------------------------------------------------------------------------


def test_a_hostile_error_message_is_kept_and_rendered_escaped(root, django_capture_on_commit_callbacks):
    message = f"{MARKUP} {HOSTILE['sql']} {HOSTILE['unicode']} {UNSTORABLE['nul']} {UNSTORABLE['surrogate']}"
    job = job_manager.submit_job("reliability.raises_message", {"message": message})
    with django_capture_on_commit_callbacks(execute=True):  # job_finished: the alert is raised
        job_manager.execute_job_sync(job.id, 1)

    job.refresh_from_db()
    stored = message.replace("\x00", "\ufffd").replace("\ud800", "\ufffd")
    error = JobExecutionLog.objects.get(job=job, event_type=EventType.ERROR)
    assert error.error_details["message"] == stored
    assert job.last_error["message"] == stored
    assert job.message == f"ValueError: {stored}"
    assert JobRetryHistory.objects.get(job=job).error_message == f"ValueError: {stored}"
    alert = AlertHistory.objects.get(job=job)
    assert alert.state.error_summary == f"ValueError: {stored} (data)"
    assert_rendered_escaped(root, pages_showing(job))


def test_a_huge_error_message_is_bounded_everywhere_it_is_kept(root, django_capture_on_commit_callbacks):
    job = job_manager.submit_job("reliability.raises_message", {"message": MARKUP, "pad": 1_000_000})
    with django_capture_on_commit_callbacks(execute=True):
        job_manager.execute_job_sync(job.id, 1)

    job.refresh_from_db()
    error = JobExecutionLog.objects.get(job=job, event_type=EventType.ERROR)
    assert len(error.error_details["message"]) == MAX_MESSAGE_CHARS
    assert len(error.error_details["traceback"]) <= MAX_TRACEBACK_CHARS
    assert len(error.message) <= 2_000 and len(job.message) <= 2_000
    assert len(job.last_error["message"]) == MAX_MESSAGE_CHARS
    assert len(JobRetryHistory.objects.get(job=job).error_message) <= 2_000
    assert len(AlertHistory.objects.get(job=job).state.error_summary) <= 500
    # The whole error event, as stored, stays small whatever the executor raised.
    assert len(json.dumps(error.error_details)) < MAX_MESSAGE_CHARS + MAX_TRACEBACK_CHARS + 2_000
    assert_rendered_escaped(root, pages_showing(job))


# --- text direction ------------------------------------------------------------------------------


class TextOutsideIsolation(HTMLParser):
    """The page's text (not its attributes) holding `needle` outside any <bdi> element."""

    def __init__(self, needle: str):
        super().__init__()
        self.needle, self.depth, self.found = needle, 0, []

    def handle_starttag(self, tag, attrs):
        self.depth += tag == "bdi"

    def handle_endtag(self, tag):
        self.depth -= tag == "bdi"

    def handle_data(self, data):
        if self.needle in data and not self.depth:
            self.found.append(data.strip())


def test_direction_controls_in_job_and_pause_texts_cannot_reorder_the_pages_own_words(alice):
    """A progress message or pause reason holding U+202E (right-to-left override) reversed the rest
    of its line: "· 2m ago · next attempt in 5s" after a job's message, "It starts once the type is
    resumed" after a pause's reason, read backwards. Each such text is isolated (<bdi>)."""
    spoof = "step 3 \u202eof 5"
    queued = JobFactory(message=spoof)
    running = JobFactory(running=True, message=spoof)
    JobFactory(failed=True, message=spoof)
    job_manager.pause_job_type_sync(queued.job_type, by="alice", reason=spoof)
    client = Client()
    client.force_login(alice)

    for page in ["/", "/jobs/", "/jobs/?view=finished", f"/jobs/{queued.id}/", f"/jobs/{running.id}/"]:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert spoof in html, page
        parser = TextOutsideIsolation("\u202e")
        parser.feed(html)
        assert parser.found == [], f"{page} shows {parser.found} unisolated"


# --- alert texts ---------------------------------------------------------------------------------


def test_hostile_alert_texts_are_bounded_and_rendered_escaped(root, alice):
    job = job_manager.submit_job("test.echo", {"for": "the alert"})
    alert = alert_manager.process_alert_sync(
        "job_failure",
        "error",
        {
            "title": MARKUP + "\n" + "t" * 1_000,
            "message": MARKUP + UNSTORABLE["nul"] + "m" * 1_000_000,
            "job_id": job.id,
            "job_type": MARKUP,
            "error": MARKUP + "e" * 10_000,
        },
    )

    alert.refresh_from_db()
    assert alert.title.startswith(MARKUP) and len(alert.title) == 200
    assert alert.message.startswith(MARKUP + STORED_AS["nul"]) and len(alert.message) == 10_000
    assert len(alert.state.error_summary) == 500 and alert.state.job_type == MARKUP
    dashboard = Client()
    dashboard.force_login(alice)
    assert_rendered_escaped(dashboard, [f"/jobs/{job.id}/", "/alerts/", f"/alerts/{alert.id}/"])
    assert_rendered_escaped(root, alert_pages(alert))


@pytest.mark.parametrize(
    "url",
    [
        "/admin/jobs/job/?created_at__year=10000",
        "/admin/monitoring/jobexecutionlog/?timestamp__year=10000",
        "/admin/monitoring/systemhealthmetric/?timestamp__year=0",
        "/admin/alerts/alerthistory/?resolved_at__year=10000",
        "/admin/alerts/notificationdelivery/?created_at__year=99999999999999999999",
        "/admin/monitoring/apitoken/?created_at__year=10000",
    ],
)
def test_an_admin_list_filter_the_database_cannot_take_is_refused_not_a_500(root, url):
    """Drill: ?created_at__year=10000 was a 500 ("year 10000 is out of range") on the jobs' and
    the events' admin lists; the alerts' date drill-down already said "incorrect lookup"."""
    response = root.get(url)

    assert (response.status_code, response.url) == (302, url.split("?")[0] + "?e=1")
