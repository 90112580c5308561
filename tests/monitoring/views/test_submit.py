"""Running a job by hand, from the Jobs page or as a copy of another job: an operator starts a
job type (a candidate import to redo, an AI match to try again with other parameters) and
watches it on its page."""

import html
import json
import re
import uuid

import pytest
from django.test import Client
from django_q.models import OrmQ

from jobs.idempotency import request_hash
from jobs.manager import job_manager
from jobs.models import IdempotencyKey, Job, JobStatus
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


def run_form(page: str, **fields) -> dict:
    """The page's Run form as the browser sends it: its hidden fields (its key, the job it copies)
    as rendered, the CSRF token aside (the test client skips that check), and the fields typed."""
    form = page.split('<details class="submit-form')[1].split("</details>")[0]
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form))
    hidden.pop("csrfmiddlewaretoken", None)
    return {**hidden, **fields}


def notices(response) -> list[str]:
    """The messages above the page (its other notices aside)."""
    return re.findall(r'<p class="notice notice-\w+" role="status">([^<]*)</p>', response.content.decode())


def test_the_same_form_sent_twice_makes_one_job_and_says_so(alice_client, django_capture_on_commit_callbacks):
    """A double click, a request queued behind the first, a resend after a lost answer: one intent, one job
    (an outreach job sent twice is two emails to a candidate)."""
    form = run_form(alice_client.get("/jobs/").content.decode(), job_type="demo.sleep", parameters='{"seconds": 1}')

    with django_capture_on_commit_callbacks(execute=True):
        first = alice_client.post("/jobs/submit/", form, follow=True)
        again = alice_client.post("/jobs/submit/", form, follow=True)

    job = Job.objects.get()
    assert first.redirect_chain == again.redirect_chain == [(f"/jobs/{job.id}/", 302)]
    assert notices(first) == ["Submitted demo.sleep."]
    assert notices(again) == ["This form was already sent: here is the job it started."]  # not "Submitted" twice
    assert job.logs.count() == 1  # its "queued" event only
    assert OrmQ.objects.count() == 1  # queued once


def test_a_forms_key_used_through_the_api_for_another_job_is_a_400_with_a_new_key(alice, alice_client):
    """The form's key with its fields' hash is an API Idempotency-Key like any other: sent by hand
    through the API with another body, the form sent afterwards was a 500."""
    form = run_form(alice_client.get("/jobs/").content.decode(), job_type="demo.sleep", parameters='{"seconds": 1}')
    taken = f"dashboard-form:{form['submit_key']}:{request_hash('demo.sleep', {'seconds': 1}, None)}"
    job_manager.submit_job("demo.fail", {}, idempotency_key=taken, owner=alice)

    refused = alice_client.post("/jobs/submit/", form)

    assert refused.status_code == 400
    assert "Nothing submitted: submit_key: this form&#x27;s key was used for another job" in refused.content.decode()
    assert run_form(refused.content.decode())["submit_key"] != form["submit_key"]
    assert Job.objects.count() == 1


def test_each_rendered_form_carries_a_new_key(alice_client):
    original = JobFactory(job_type="demo.sleep", completed=True)
    keys = [
        run_form(alice_client.get(url).content.decode())["submit_key"]
        for url in ("/jobs/", "/jobs/", f"/jobs/{original.id}/", f"/jobs/{original.id}/")
    ]

    assert len(set(keys)) == 4
    assert all(str(uuid.UUID(key)) == key for key in keys)


def test_the_same_form_sent_again_with_other_fields_is_a_new_job(alice_client):
    """The operator went Back, changed the parameters and sent it: another intent, not a refusal."""
    form = run_form(alice_client.get("/jobs/").content.decode(), job_type="demo.sleep", parameters='{"seconds": 1}')

    first = alice_client.post("/jobs/submit/", form, follow=True)
    changed = alice_client.post("/jobs/submit/", {**form, "parameters": '{"seconds": 2}'}, follow=True)
    more_attempts = alice_client.post("/jobs/submit/", {**form, "max_attempts": "5"})
    as_first = alice_client.post("/jobs/submit/", {**form, "parameters": '{ "seconds":1 }'})  # the same JSON

    jobs = Job.objects.order_by("created_at")
    assert [job.parameters["seconds"] for job in jobs] == [1, 2, 1]
    urls = [first.redirect_chain[0][0], changed.redirect_chain[0][0], more_attempts.url]
    assert urls == [f"/jobs/{job.id}/" for job in jobs]
    assert notices(changed) == ["Submitted demo.sleep."]
    assert as_first.url == urls[0]


def test_a_refused_form_is_sent_back_with_its_key_and_sent_corrected_makes_the_job(alice_client):
    form = run_form(alice_client.get("/jobs/").content.decode(), job_type="demo.sleep", parameters='{"seconds": -1}')

    refused = alice_client.post("/jobs/submit/", form)
    corrected = run_form(refused.content.decode(), job_type="demo.sleep", parameters='{"seconds": 1}')
    made = alice_client.post("/jobs/submit/", corrected)
    again = alice_client.post("/jobs/submit/", corrected)

    assert refused.status_code == 400 and corrected["submit_key"] == form["submit_key"]
    assert made.url == again.url == f"/jobs/{Job.objects.get().id}/"


def test_a_copy_sent_twice_is_one_copy(alice_client):
    original = JobFactory(job_type="demo.sleep", completed=True, parameters={"seconds": 1, "steps": 2})
    form = run_form(alice_client.get(f"/jobs/{original.id}/").content.decode(), job_type="demo.sleep")
    form["parameters"] = '{"seconds": 1, "steps": 2}'

    first = alice_client.post("/jobs/submit/", form)
    again = alice_client.post("/jobs/submit/", form)

    copy = Job.objects.exclude(id=original.id).get()
    assert form["copy_of"] == str(original.id)
    assert first.url == again.url == f"/jobs/{copy.id}/"


def test_a_form_without_a_key_still_runs_its_job_every_time_it_is_sent(alice_client):
    """A tab opened before forms had keys must not break: it submits as it did, without dedupe."""
    form = {"job_type": "demo.sleep", "parameters": '{"seconds": 1}'}

    sent = [alice_client.post("/jobs/submit/", form) for _ in range(2)]
    sent.append(alice_client.post("/jobs/submit/", {**form, "submit_key": ""}))

    assert [response.status_code for response in sent] == [302, 302, 302]
    assert Job.objects.count() == 3
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("key", ["not-a-uuid", "1" * 40, SCRIPT])
def test_a_malformed_key_is_a_400_naming_it_and_the_form_comes_back_with_a_new_one(alice_client, key):
    form = {"job_type": "demo.sleep", "parameters": '{"seconds": 1}', "submit_key": key}

    response = alice_client.post("/jobs/submit/", form)

    page = response.content.decode()
    assert response.status_code == 400
    assert "Nothing submitted: submit_key: not the key this form carries (a UUID)" in page
    assert SCRIPT not in page
    sent_back = run_form(page)["submit_key"]
    assert str(uuid.UUID(sent_back)) == sent_back
    assert not Job.objects.exists()


def test_keys_are_per_user(alice_client):
    bob = UserFactory(username="bob", permissions=["jobs.view_job", "jobs.add_job"])
    form = run_form(alice_client.get("/jobs/").content.decode(), job_type="demo.sleep", parameters='{"seconds": 1}')

    alices = alice_client.post("/jobs/submit/", form)
    alice_client.force_login(bob)
    bobs = alice_client.post("/jobs/submit/", form)

    assert alices.url != bobs.url
    assert sorted(Job.objects.values_list("submitted_by", flat=True)) == ["alice", "bob"]


def test_a_submit_with_its_key_costs_a_lookup_and_the_keys_row(
    alice_client, is_postgres, django_assert_max_num_queries
):
    form = run_form(alice_client.get("/jobs/").content.decode(), job_type="demo.sleep", parameters='{"seconds": 1}')
    login = 2 if is_postgres else 3  # the session, the user with their permissions (SQLite: in two queries)

    # The key looked up, a savepoint, the job, its event, the key, release: two more than without a key.
    with django_assert_max_num_queries(login + 6):
        first = alice_client.post("/jobs/submit/", form)
    # The key looked up with its job: nothing written.
    with django_assert_max_num_queries(login + 1):
        again = alice_client.post("/jobs/submit/", form)

    assert first.url == again.url
