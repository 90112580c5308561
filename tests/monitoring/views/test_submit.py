"""Running a job by hand, from the Jobs page or as a copy of another job: an operator starts a
job type (a candidate import to redo, an AI match to try again with other parameters) and
watches it on its page."""

import html
import json
import re

import pytest
from django.test import Client
from django_q.models import OrmQ

from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from jobs.registry import get_job_executor
from monitoring.models import EventType
from tests.factories import JobFactory, UserFactory
from tests.monitoring.views.conftest import htmx

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('pwned')</script>"


def test_an_operator_runs_a_job_and_lands_on_its_page(alice_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            "/jobs/submit/",
            {"job_type": "demo.sleep", "parameters": '{"seconds": 1, "steps": 1}', "max_attempts": "2"},
            follow=True,
        )

    job = Job.objects.get()
    assert response.redirect_chain == [(f"/jobs/{job.id}/", 302)]
    assert "Submitted demo.sleep." in response.content.decode()
    assert (job.job_type, job.parameters, job.max_attempts, job.status, job.submitted_by) == (
        "demo.sleep",
        {"seconds": 1, "steps": 1},
        2,
        JobStatus.QUEUED,
        "alice",
    )
    assert job.logs.filter(event_type=EventType.QUEUED).exists()
    assert [task.task["args"][0] for task in OrmQ.objects.all()] == [str(job.id)]


def test_no_parameters_and_no_max_attempts_take_the_job_types_defaults(alice_client):
    alice_client.post("/jobs/submit/", {"job_type": "demo.fail", "parameters": "", "max_attempts": ""})

    job = Job.objects.get()
    assert job.parameters == get_job_executor("demo.fail").validate_parameters({})
    assert job.max_attempts == get_job_executor("demo.fail").retry_manager.max_attempts


def test_a_job_of_a_paused_type_is_submitted_and_the_operator_told_it_waits(alice_client):
    job_manager.pause_job_type_sync("demo.fail", by="bob")

    response = alice_client.post("/jobs/submit/", {"job_type": "demo.fail"}, follow=True)

    page = response.content.decode()
    assert "Submitted demo.fail." in page
    assert "Held: demo.fail is paused</strong> by <bdi>bob</bdi>" in page  # live: it goes once resumed
    assert Job.objects.get().status == JobStatus.QUEUED


@pytest.mark.parametrize(
    "form, refusal",
    [
        ({"job_type": "demo.sleep", "parameters": "{seconds: 1}"}, "parameters: not valid JSON: Expecting property"),
        ({"job_type": "demo.sleep", "parameters": "[1, 2]"}, "parameters: must be a JSON object"),
        (
            {"job_type": "demo.sleep", "parameters": '{"seconds": 1, "seconds": 2}'},
            "parameters: seconds: given 2 times; give it once",
        ),
        (
            {"job_type": "demo.sleep", "parameters": '{"seconds": "soon"}'},
            "parameters.seconds: Input should be a valid",
        ),
        ({"job_type": "demo.sleep", "parameters": '{"seconds": NaN}'}, "parameters.seconds: must be a finite number"),
        ({"job_type": "no.such.type", "parameters": "{}"}, "job_type: Select a valid choice. no.such.type is not one"),
        ({"job_type": "", "parameters": "{}"}, "job_type: This field is required."),
        ({"job_type": "demo.fail", "max_attempts": "0"}, "max_attempts: Ensure this value is greater than or equal"),
    ],
)
def test_a_refused_job_is_a_400_naming_the_field_and_nothing_is_queued(alice_client, form, refusal):
    response = alice_client.post("/jobs/submit/", form)

    assert response.status_code == 400
    assert f"Nothing submitted: {refusal}" in response.content.decode()
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "form, control, reason",
    [
        ({"job_type": "demo.sleep", "parameters": "{seconds: 1}"}, "textarea", "not valid JSON: Expecting property"),
        ({"job_type": "demo.sleep", "parameters": '{"seconds": -1}'}, "textarea", "parameters.seconds: "),
        ({"job_type": "", "parameters": "{}"}, "select", "This field is required."),
        ({"job_type": "demo.fail", "max_attempts": "0"}, "input", "Ensure this value is greater than or equal"),
    ],
)
def test_the_refused_field_is_marked_invalid_and_says_why_beside_it(alice_client, form, control, reason):
    """A screen reader on the form heard no error: the reason was only in the notice above it."""
    page = alice_client.post("/jobs/submit/", form).content.decode()

    form_html = page.split('<details class="submit-form" open>')[1].split("</details>")[0]
    (marked,) = re.findall(r"<(?:select|textarea|input)[^>]*aria-invalid=\"true\"[^>]*>", form_html)
    assert marked.startswith(f"<{control}")
    error_id = re.search(r'aria-describedby="([^"]+)"', marked).group(1)
    assert re.search(rf'<span class="field-error" id="{error_id}">{re.escape(reason)}', form_html)


def test_what_the_operator_typed_is_escaped_and_kept_in_the_form(alice_client):
    response = alice_client.post("/jobs/submit/", {"job_type": "demo.sleep", "parameters": f'{{"x": "{SCRIPT}"'})

    page = response.content.decode()
    assert response.status_code == 400 and SCRIPT not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert '<details class="submit-form" open>' in page  # open again, with the text to correct


def test_the_run_form_is_on_the_jobs_page_for_those_who_may_submit_jobs(alice_client):
    assert 'action="/jobs/submit/"' in alice_client.get("/jobs/").content.decode()
    assert alice_client.get("/jobs/submit/").status_code == 405


def test_those_who_may_only_look_neither_see_the_run_form_nor_run_a_job(viewer_client):
    assert 'action="/jobs/submit/"' not in viewer_client.get("/jobs/").content.decode()
    assert viewer_client.post("/jobs/submit/", {"job_type": "demo.fail"}).status_code == 403
    assert not Job.objects.exists()


def test_running_a_job_needs_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/jobs/submit/", {"job_type": "demo.fail"}).status_code == 403
    assert not Job.objects.exists()


def test_a_jobs_page_runs_a_copy_of_it_with_its_parameters_to_edit(alice_client, django_capture_on_commit_callbacks):
    """The import ran with a wrong page size: run it again, the parameters corrected."""
    original = JobFactory(
        job_type="demo.sleep", completed=True, parameters={"seconds": 1, "steps": 2, "note": SCRIPT}, max_attempts=5
    )

    page = alice_client.get(f"/jobs/{original.id}/").content.decode()
    form = page.split('<details class="submit-form">')[1].split("</details>")[0]
    assert "<summary>▶ Run a copy of this job…</summary>" in form
    assert '<option value="demo.sleep" selected>demo.sleep</option>' in form
    typed = re.search(r'<textarea name="parameters"[^>]*>(.*)</textarea>', form)[1]
    assert SCRIPT not in typed and json.loads(html.unescape(typed)) == original.parameters
    assert 'name="max_attempts" min="1" max="100" value="5"' in form
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            "/jobs/submit/", {"job_type": "demo.sleep", "parameters": '{"seconds": 1, "steps": 1}', "max_attempts": "5"}
        )

    copy = Job.objects.exclude(id=original.id).get()
    assert response.url == f"/jobs/{copy.id}/"
    assert (copy.parameters, copy.max_attempts, copy.submitted_by) == ({"seconds": 1, "steps": 1}, 5, "alice")


def test_no_copy_is_offered_without_the_permission_or_for_a_type_no_longer_registered(alice_client, viewer):
    gone = JobFactory(job_type="imports.legacy", completed=True)
    assert "Run a copy" not in alice_client.get(f"/jobs/{gone.id}/").content.decode()
    alice_client.force_login(viewer)
    job = JobFactory(job_type="demo.sleep", completed=True)
    assert "Run a copy" not in alice_client.get(f"/jobs/{job.id}/").content.decode()


def test_a_refused_copy_is_shown_on_the_page_of_the_job_it_copies(alice_client):
    original = JobFactory(job_type="demo.sleep", completed=True, parameters={"seconds": 1, "steps": 2})

    response = alice_client.post(
        "/jobs/submit/", {"job_type": "demo.sleep", "parameters": '{"seconds": -1}', "copy_of": str(original.id)}
    )

    page = response.content.decode()
    assert response.status_code == 400 and response["HX-Push-Url"] == "false"  # a reload shows the page it came from
    assert f'<code class="id">{original.id}</code>' in page  # still that job's page
    assert "Nothing submitted: parameters.seconds:" in page
    form = page.split('<details class="submit-form" open>')[1].split("</details>")[0]
    assert "{&quot;seconds&quot;: -1}</textarea>" in form and f'name="copy_of" value="{original.id}"' in form
    assert Job.objects.count() == 1


def test_a_form_nested_too_deeply_is_refused_in_words(alice_client):
    response = alice_client.post("/jobs/submit/", {"job_type": "demo.sleep", "parameters": "[" * 100_000})
    assert "Nothing submitted: parameters: nested too deeply" in response.content.decode()


def test_a_user_who_may_submit_but_not_look_gets_the_refusal_without_any_job(client):
    submitter = UserFactory(username="robot", permissions=["jobs.add_job"])
    client.force_login(submitter)
    other = JobFactory(job_type="demo.sleep", completed=True, message="someone else's job")

    response = client.post("/jobs/submit/", {"job_type": "demo.sleep", "parameters": "[", "copy_of": str(other.id)})

    assert response.status_code == 400 and response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode().startswith("Nothing submitted: parameters: not valid JSON")
    assert str(other.id) not in response.content.decode()


def test_parameters_pasted_from_a_file_with_a_byte_order_mark_are_read_as_the_api_reads_them(alice_client):
    alice_client.post("/jobs/submit/", {"job_type": "demo.sleep", "parameters": '\ufeff{"seconds": 1, "steps": 1}'})

    assert Job.objects.get().parameters == {"seconds": 1, "steps": 1}


def test_parameters_too_large_for_any_form_are_refused_in_words_saying_how_large(alice_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    parameters = json.dumps({"rows": ["x" * 100] * 20})
    form = {"job_type": "demo.sleep", "parameters": parameters}

    response = alice_client.post("/jobs/submit/", form, headers=htmx("body"))

    assert response.status_code == 413 and response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == (
        "Refused: the form sent more than 1.0 KB, the most the server reads from one form. Nothing was saved."
    )
    assert not Job.objects.exists()


def test_the_copy_form_is_built_for_the_page_not_for_each_poll_of_its_live_part(alice_client, monkeypatch):
    job = JobFactory(job_type="demo.sleep", running=True, parameters={"seconds": 60, "steps": 2})

    def not_on_a_poll(job):
        raise AssertionError("the live part does not show the copy form")

    monkeypatch.setattr("monitoring.views.job_detail.copy_form", not_on_a_poll)
    assert alice_client.get(f"/jobs/{job.id}/", headers=htmx("job-live")).status_code == 200
