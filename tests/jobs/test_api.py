"""POST /api/jobs, /api/jobs/{job_id}/cancel and /retry; pausing and resuming a job type."""

import json
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django_q.models import OrmQ
from ninja import main

from jobs import registry
from jobs.models import Job, JobStatus
from monitoring.models import EventType
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def post(client, url, body=None, **kwargs):
    data = body if isinstance(body, (str, bytes)) else json.dumps({} if body is None else body)
    return client.post(url, data, content_type="application/json", **kwargs)


# --- submit ----------------------------------------------------------------------------


def test_submit_creates_the_job_and_queues_it(as_alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            as_alice, "/api/jobs", {"job_type": "demo.sleep", "parameters": {"seconds": 2}, "max_attempts": 5}
        )

    assert response.status_code == 201
    body = response.json()
    job = Job.objects.get(id=body["id"])
    assert (body["job_type"], body["status"], body["max_attempts"], body["attempts"]) == ("demo.sleep", "queued", 5, 0)
    assert job.parameters == {"seconds": 2.0, "steps": 10}
    assert job.submitted_by == "alice"
    assert OrmQ.objects.count() == 1


def test_submit_with_a_token_records_which_token(client, alice, bearer):
    response = post(client, "/api/jobs", {"job_type": "test.echo"}, headers=bearer(alice, name="platform backend"))

    assert response.status_code == 201
    assert Job.objects.get(id=response.json()["id"]).submitted_by == "alice (API token 'platform backend')"


def test_unknown_job_type_lists_the_known_ones(as_alice):
    response = post(as_alice, "/api/jobs", {"job_type": "nope"})

    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("unknown job type 'nope'; known job types: ")
    assert {"ai_matching", "demo.fail", "demo.sleep"} <= set(body["known_job_types"])
    assert body["errors"][0]["field"] == "job_type"
    assert not Job.objects.exists()


def test_invalid_parameters_name_each_field(as_alice):
    response = post(
        as_alice, "/api/jobs", {"job_type": "demo.fail", "parameters": {"error_class": "cosmic", "fail_times": -1}}
    )

    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {
        "parameters.error_class",
        "parameters.fail_times",
    }


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, ["job_type"]),
        ({"job_type": ""}, ["job_type"]),
        ({"job_type": "demo.sleep", "parameters": [1, 2]}, ["parameters"]),
        ({"job_type": "demo.sleep", "max_attempts": 0}, ["max_attempts"]),
        ({"job_type": "demo.sleep", "max_attempts": 101}, ["max_attempts"]),
        ({"job_type": "demo.sleep", "priority": "high"}, ["priority"]),
        ([], ["body"]),
    ],
)
def test_a_bad_body_is_422_naming_the_field(as_alice, body, fields):
    response = post(as_alice, "/api/jobs", body)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == fields


def test_a_body_that_is_not_json_is_400(as_alice):
    response = post(as_alice, "/api/jobs", "{job_type: demo.sleep")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("request body is not valid JSON: Expecting property name")
    assert response.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"job_type": "test.echo", "job_type": "demo.fail"}', "job_type"),
        ('{"job_type": "test.echo", "parameters": {"n": 1, "n": 2}}', "parameters.n"),
        ('{"job_type": "test.echo", "parameters": {"rows": [{"id": 1}, {"id": 2, "id": 3}]}}', "parameters.rows.1.id"),
    ],
)
def test_a_key_given_twice_in_the_body_is_422_naming_it_not_the_last_one_winning(as_alice, body, field):
    """json.loads keeps the last value: a client's bug would run the job it did not mean."""
    response = post(as_alice, "/api/jobs", body)

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "message": "given 2 times; give it once"}]
    assert response.json()["detail"] == f"invalid request: {field}: given 2 times; give it once"
    assert not Job.objects.exists()


def test_no_body_at_all_is_422(as_alice):
    response = post(as_alice, "/api/jobs", "")

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body", "message": "Field required"}]


def test_ten_thousand_levels_of_nesting_are_refused_cleanly(as_alice):
    response = post(
        as_alice, "/api/jobs", '{"job_type": "test.echo", "parameters": {"a": ' + "[" * 10_000 + "]" * 10_000 + "}}"
    )

    assert response.status_code == 400
    assert response.json()["detail"] == "request body is nested too deeply"


def test_parameters_deeper_than_the_job_limit_are_refused_by_field(as_alice):
    response = post(
        as_alice, "/api/jobs", '{"job_type": "test.echo", "parameters": {"a": ' + "[" * 500 + "]" * 500 + "}}"
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "parameters", "message": "nested deeper than 32 levels"}]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize(
    "job_type, parameters, field",
    [("demo.sleep", '{"seconds": %s}', "parameters.seconds"), ("test.echo", '{"x": [1, %s]}', "parameters.x.1")],
)
def test_numbers_that_are_not_finite_are_refused_by_field_whatever_the_job_types_bounds(
    as_alice, number, job_type, parameters, field
):
    """Python's json reads them (1e400 as Infinity); jsonb does not, and "less than or equal to 3600" misled."""
    body = '{"job_type": "%s", "parameters": %s}' % (job_type, parameters % number)
    response = post(as_alice, "/api/jobs", body)

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "message": "must be a finite number"}]
    assert not Job.objects.exists()


def test_a_field_of_several_types_gets_one_message_under_its_own_name(as_alice):
    """Pydantic names each type of a union it tried (job_posting_id.int, job_posting_id.str): not a field."""
    parameters = {"job_posting_id": [7], "candidate_ids": [1, {"id": 2}]}
    response = post(as_alice, "/api/jobs", {"job_type": "ai_matching", "parameters": parameters})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "parameters.candidate_ids.1", "message": "must be an integer or a string"},
        {"field": "parameters.job_posting_id", "message": "must be an integer or a string"},
    ]


def test_oversized_parameters_are_refused(as_alice):
    response = post(as_alice, "/api/jobs", {"job_type": "test.echo", "parameters": {"blob": "x" * 300_000}})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "parameters"
    assert "more than the 262144 allowed" in response.json()["errors"][0]["message"]


def test_a_body_past_the_upload_limit_is_413(as_alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = post(as_alice, "/api/jobs", {"job_type": "test.echo", "parameters": {"blob": "x" * 2000}})

    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large", "errors": []}


def test_hostile_text_is_echoed_as_json_not_markup(as_alice):
    response = post(as_alice, "/api/jobs", {"job_type": "<script>alert(1)</script>"})

    assert response.status_code == 422
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert "<script>alert(1)</script>" in response.json()["detail"]


# --- cancel ----------------------------------------------------------------------------


def test_cancel_a_queued_job(as_alice):
    job = Job.objects.create(job_type="demo.sleep", status=JobStatus.QUEUED)

    response = as_alice.post(f"/api/jobs/{job.id}/cancel")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["message"]) == ("cancelled", "cancelled by alice")
    assert job.logs.get().event_type == EventType.CANCELLED


def test_cancel_a_running_job_asks_it_to_stop(as_alice):
    job = Job.objects.create(job_type="demo.sleep", status=JobStatus.RUNNING, attempts=1)

    body = as_alice.post(f"/api/jobs/{job.id}/cancel").json()

    assert body["status"] == "running"
    assert body["cancel_requested_at"] is not None


def test_cancelling_a_running_job_again_changes_nothing(as_alice):
    """A script sending its cancel twice (a retry on a timeout) is not told off: 200, the first
    request stands, one event. Only a job that finished is a 409."""
    job = Job.objects.create(job_type="demo.sleep", status=JobStatus.RUNNING, attempts=1)
    with time_machine.travel(datetime(2026, 11, 29, 3, 0, tzinfo=UTC), tick=False):
        first = as_alice.post(f"/api/jobs/{job.id}/cancel")
    with time_machine.travel(datetime(2026, 11, 29, 3, 1, tzinfo=UTC), tick=False):
        again = as_alice.post(f"/api/jobs/{str(job.id)[:8]}/cancel")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["cancel_requested_at"] == first.json()["cancel_requested_at"] == "2026-11-29T03:00:00.000Z"
    assert list(job.logs.values_list("event_type", flat=True)) == [EventType.CANCEL_REQUESTED]


def test_cancelling_a_finished_job_is_a_conflict_giving_its_status(as_alice):
    # `status` for a script, which should not parse the sentence to learn the job already completed.
    job = Job.objects.create(job_type="demo.sleep", status=JobStatus.COMPLETED)

    response = as_alice.post(f"/api/jobs/{job.id}/cancel")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"job {job.id} is completed: only queued, running or retrying jobs can be cancelled",
        "errors": [],
        "status": "completed",
    }


# --- retry -----------------------------------------------------------------------------


def test_retry_a_failed_job(as_alice, django_capture_on_commit_callbacks):
    job = Job.objects.create(job_type="demo.fail", status=JobStatus.FAILED, attempts=3, max_attempts=3)

    with django_capture_on_commit_callbacks(execute=True):
        response = as_alice.post(f"/api/jobs/{job.id}/retry?attempt=4")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["max_attempts"]) == ("queued", 6)
    assert OrmQ.objects.count() == 1


def test_retrying_a_running_job_or_the_wrong_attempt_is_a_conflict(as_alice):
    running = Job.objects.create(job_type="demo.sleep", status=JobStatus.RUNNING, attempts=1)
    failed = Job.objects.create(job_type="demo.sleep", status=JobStatus.FAILED, attempts=3)

    response = as_alice.post(f"/api/jobs/{running.id}/retry")
    assert response.status_code == 409
    assert "only failed, cancelled or retrying jobs can be retried" in response.json()["detail"]
    assert response.json()["status"] == "running"

    response = as_alice.post(f"/api/jobs/{failed.id}/retry?attempt=3")
    assert response.status_code == 409
    assert response.json()["detail"] == f"job {failed.id} has had 3 attempts; attempt 3 is not next (attempt 4 is)"
    assert response.json()["status"] == "failed"


def test_a_retry_expecting_another_attempt_names_the_attempt_parameter(client, alice, bearer):
    # A script retrying twice with the same ?attempt= learns from the answer which field was wrong
    # and what it should have been, not only from the sentence in `detail`.
    failed = JobFactory(failed=True, attempts=3)

    response = client.post(f"/api/jobs/{str(failed.id)[:8]}/retry?attempt=2", headers=bearer(alice))

    assert response.status_code == 409
    assert response.json()["errors"] == [{"field": "attempt", "message": "attempt 4 is next"}]
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 3)


def test_the_expected_attempt_is_digits_as_written(as_alice):
    failed = JobFactory(failed=True, attempts=3)

    response = as_alice.post(f"/api/jobs/{failed.id}/retry?attempt=+4")

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "attempt", "message": "must be a whole number, in digits"}]
    assert as_alice.post(f"/api/jobs/{failed.id}/retry?attempt=4.0").status_code == 200  # JSON Schema's integer
    (attempt,) = as_alice.get("/api/openapi.json").json()["paths"]["/api/jobs/{job_id}/retry"]["post"]["parameters"][1:]
    assert attempt["schema"]["anyOf"][0] == {"minimum": 1, "type": "integer"}  # as the API checks it


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_missing_and_malformed_job_ids(as_alice, action):
    missing = uuid.uuid4()

    response = as_alice.post(f"/api/jobs/{missing}/{action}")
    assert response.status_code == 404
    assert response.json()["detail"] == f"job {missing} not found"

    response = as_alice.post(f"/api/jobs/12345/{action}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "job_id"


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_a_sessions_form_past_the_upload_limit_is_a_413_the_schema_declares(alice, settings, action):
    """A session's CSRF check reads a form body: past DATA_UPLOAD_MAX_MEMORY_SIZE the action is a 413,
    as a submit's is, and acts on nothing; the schema of cancel and retry did not declare it."""
    from django.test import Client

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    job = JobFactory(failed=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    browser.get("/api/docs")  # the page sets the csrftoken cookie

    response = browser.post(
        f"/api/jobs/{job.id}/{action}",
        "note=" + "x" * 2000,
        content_type="application/x-www-form-urlencoded",
        headers={"X-CSRFToken": browser.cookies["csrftoken"].value},
    )

    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large", "errors": []}
    assert Job.objects.get(id=job.id).status == JobStatus.FAILED
    operation = browser.get("/api/openapi.json").json()["paths"][f"/api/jobs/{{job_id}}/{action}"]["post"]
    assert "413" in operation["responses"]


def test_cancel_and_retry_take_the_short_id_an_operator_copied(as_alice, django_capture_on_commit_callbacks):
    queued = JobFactory(id=uuid.UUID("3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c"), status=JobStatus.QUEUED)
    failed = JobFactory(id=uuid.UUID("0b6f0000-0000-4000-8000-000000000001"), failed=True)

    cancelled = as_alice.post("/api/jobs/3F2A1B4C/cancel")
    with django_capture_on_commit_callbacks(execute=True):
        retried = as_alice.post("/api/jobs/0b6f0000-0000/retry")

    assert (cancelled.status_code, cancelled.json()["id"], cancelled.json()["status"]) == (
        200,
        str(queued.id),
        "cancelled",
    )
    assert (retried.status_code, retried.json()["id"], retried.json()["status"]) == (200, str(failed.id), "queued")


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_a_short_id_of_several_jobs_acts_on_none_and_lists_them(as_alice, action):
    first = JobFactory(id=uuid.UUID("3f2a1b4c-0000-4000-8000-000000000001"), failed=True)
    second = JobFactory(id=uuid.UUID("3f2a1b4c-9d0e-4000-8000-000000000002"), failed=True)

    response = as_alice.post(f"/api/jobs/3f2a1b4c/{action}")

    assert response.status_code == 409
    assert response.json()["detail"].startswith("2 jobs have an id starting with 3f2a1b4c: ")
    assert [match["id"] for match in response.json()["matches"]] == [str(first.id), str(second.id)]
    assert response.json()["match_count"] == 2
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.FAILED}


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_a_short_id_of_no_job_is_a_404_saying_so(as_alice, action):
    response = as_alice.post(f"/api/jobs/3f2a1b4c/{action}")

    assert (response.status_code, response.json()["detail"]) == (404, "no job id starts with 3f2a1b4c")


def test_the_schema_spells_out_each_job_types_parameters(as_alice):
    schema = as_alice.get("/api/openapi.json").json()

    variants = {v["title"]: v for v in schema["components"]["schemas"]["JobSubmitIn"]["oneOf"]}
    assert {"ai_matching", "demo.fail", "demo.sleep", "test.echo"} <= set(variants)
    sleep = variants["demo.sleep"]
    assert sleep["properties"]["job_type"] == {"type": "string", "const": "demo.sleep"}
    assert set(sleep["properties"]["parameters"]["properties"]) == {"seconds", "steps"}
    assert sleep["required"] == ["job_type"]
    assert variants["ai_matching"]["required"] == ["job_type", "parameters"]  # candidate_ids has no default
    assert variants["test.echo"]["properties"]["parameters"] == {"type": "object", "additionalProperties": True}


def test_the_schema_is_built_once_and_again_for_a_job_type_registered_later(as_alice, monkeypatch):
    """Building it walks every operation and model (70-370 ms): it is built once per process, and
    again only when the job types it documents change."""
    builds = []
    build = main.get_schema
    monkeypatch.setattr(main, "get_schema", lambda **kwargs: builds.append(1) or build(**kwargs))
    as_alice.get("/api/openapi.json")  # built for this test's job types, whatever an earlier test registered
    builds.clear()

    first = as_alice.get("/api/openapi.json").json()
    first["components"]["schemas"].clear()  # a caller changing its copy changes no other
    again = as_alice.get("/api/openapi.json").json()
    assert builds == []
    assert again["components"]["schemas"]["JobSubmitIn"]["oneOf"]

    monkeypatch.setitem(registry._registry, "test.late", registry.JobExecutor("test.late", func=lambda p, ctx: p))
    late = as_alice.get("/api/openapi.json").json()
    assert builds == [1]
    assert "test.late" in {v["title"] for v in late["components"]["schemas"]["JobSubmitIn"]["oneOf"]}
    for known in ("PauseIn", "ResumeIn"):  # the enum a client sends from; the metrics' job_type too
        assert "test.late" in late["components"]["schemas"][known]["properties"]["job_type"]["enum"]
    parameters = late["paths"]["/api/monitoring/metrics"]["get"]["parameters"]
    job_type = next(parameter for parameter in parameters if parameter["name"] == "job_type")
    assert "test.late" in job_type["schema"]["anyOf"][0]["enum"]


# --- pause and resume a job type -----------------------------------------------------------


def test_pause_lists_and_resume_a_job_type_with_a_token(client, alice, bearer, django_capture_on_commit_callbacks):
    from jobs.manager import job_manager

    held = job_manager.submit_job("test.echo", {})
    headers = bearer(alice, name="ops bot")

    paused = post(client, "/api/jobs/pause", {"job_type": "test.echo", "reason": "echo down"}, headers=headers)
    again = post(client, "/api/jobs/pause", {"job_type": "test.echo"}, headers=headers)
    listed = client.get("/api/jobs/paused", headers=headers)
    with django_capture_on_commit_callbacks(execute=True):
        resumed = post(client, "/api/jobs/resume", {"job_type": "test.echo"}, headers=headers)
    not_paused = post(client, "/api/jobs/resume", {"job_type": "test.echo"}, headers=headers)

    assert paused.status_code == 200 and paused.json()["detail"] == "test.echo paused"
    [pause] = paused.json()["paused"]
    assert (pause["job_type"], pause["paused_by"], pause["reason"], pause["held"]) == (
        "test.echo",
        "alice (API token 'ops bot')",
        "echo down",
        1,
    )
    assert (again.status_code, again.json()["already_paused"]) == (200, True)
    assert [item["job_type"] for item in listed.json()] == ["test.echo"]
    assert resumed.status_code == 200 and resumed.json() == {
        "detail": "test.echo resumed: 1 held job queued again",
        "enqueued": 1,
    }
    assert held.logs.filter(details__resumed=True).exists()
    assert (not_paused.status_code, not_paused.json()["detail"]) == (409, "test.echo is not paused")


@pytest.mark.parametrize(
    "body, field",
    [({}, "job_type"), ({"job_type": "a\nb"}, "job_type"), ({"job_type": " ai_matching"}, "job_type"),
     ({"job_type": "x", "reason": "r" * 501}, "reason"), ({"job_type": "x", "minutes": 5}, "minutes")],
)  # fmt: skip
def test_a_bad_pause_is_a_422_naming_the_field(as_alice, body, field):
    response = post(as_alice, "/api/jobs/pause", body)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_resuming_an_unknown_job_type_is_a_422_listing_the_known_ones_as_the_pause(as_alice):
    # A typo is not "another operator resumed it" (409): the resume names the field, as the pause does.
    response = post(as_alice, "/api/jobs/resume", {"job_type": "test.ech"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "job_type"
    assert "test.echo" in response.json()["known_job_types"]


def test_resuming_a_known_job_type_not_paused_is_a_409_saying_paused_false(as_alice):
    # `paused: false` for a script to read, as a job action's 409 gives the job's `status`.
    JobFactory(job_type="retired.export")  # no longer registered, still in the history

    for job_type in ("test.echo", "retired.export"):
        response = post(as_alice, "/api/jobs/resume", {"job_type": job_type})
        assert response.status_code == 409
        assert response.json() == {"detail": f"{job_type} is not paused", "errors": [], "paused": False}


def test_pausing_an_unknown_job_type_is_a_422_listing_the_known_ones(as_alice):
    from jobs.models import JobTypePause

    response = post(as_alice, "/api/jobs/pause", {"job_type": "test.ech", "reason": "typo"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "job_type"
    assert response.json()["detail"].startswith("unknown job type 'test.ech'; known job types: ")
    assert "test.echo" in response.json()["known_job_types"]
    assert not JobTypePause.objects.exists()


def test_pausing_needs_the_control_permission_and_csrf_for_a_session(client, viewer, alice, bearer):
    from django.test import Client

    from jobs.models import JobTypePause

    assert post(client, "/api/jobs/pause", {"job_type": "x"}, headers=bearer(viewer)).status_code == 403
    assert post(client, "/api/jobs/resume", {"job_type": "x"}, headers=bearer(viewer)).status_code == 403
    assert client.get("/api/jobs/paused", headers=bearer(viewer)).status_code == 200  # looking is allowed
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert post(browser, "/api/jobs/pause", {"job_type": "x"}).status_code == 403
    assert not JobTypePause.objects.exists()
