"""The built-in job types, run in-process against the simulated AI matching service."""

import pytest

from jobs.manager import job_manager
from jobs.models import JobStatus
from jobs.tasks import run_job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ai_service(live_server, settings):
    settings.DEMO_MODE = True
    settings.DEMO_AI_FAILURE_RATE = settings.DEMO_AI_OVERLOAD_FAILURE_RATE = 0.0
    settings.AI_MATCHING_URL = f"{live_server.url}/demo/ai-matching"
    settings.AI_MATCHING_API_KEY = settings.DEMO_AI_SERVICE_KEY = "test-key"
    settings.JOBS = {**settings.JOBS, "PROGRESS_INTERVAL": 0}
    return settings


def run(job_type, parameters):
    job = job_manager.submit_job(job_type, parameters)
    run_job(str(job.id), 1)
    job.refresh_from_db()
    return job


def test_ai_matching_scores_candidates_in_batches(ai_service):
    job = run("ai_matching", {"candidate_ids": list(range(1, 121)), "job_posting_id": 7})
    assert job.status == JobStatus.COMPLETED
    assert job.result["scored"] == 120 and len(job.result["top_matches"]) == 10
    scores = [m["score"] for m in job.result["top_matches"]]
    assert scores == sorted(scores, reverse=True)
    progress = list(job.logs.filter(event_type="progress").values_list("progress", flat=True))
    assert progress == [41, 83, 100]  # batches of 50


def test_ai_matching_with_a_wrong_key_is_a_configuration_error(ai_service):
    ai_service.AI_MATCHING_API_KEY = "wrong"
    job = run("ai_matching", {"candidate_ids": [1], "job_posting_id": 7})
    assert (job.status, job.error_class) == (JobStatus.FAILED, "configuration")
    assert "401 Unauthorized" in job.message


def test_ai_matching_service_overloaded_is_transient(ai_service):
    ai_service.DEMO_AI_FAILURE_RATE = ai_service.DEMO_AI_OVERLOAD_FAILURE_RATE = 1.0
    job = run("ai_matching", {"candidate_ids": [1], "job_posting_id": 7})
    assert (job.status, job.error_class) == (JobStatus.RETRYING, "transient")
    assert "503 Service Unavailable" in job.message


def test_ai_matching_unreachable_is_transient(settings):
    settings.AI_MATCHING_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.AI_MATCHING_API_KEY = "k"
    job = run("ai_matching", {"candidate_ids": [1], "job_posting_id": 7})
    assert (job.status, job.error_class) == (JobStatus.RETRYING, "transient")


def test_ai_matching_without_a_url_is_a_configuration_error(settings):
    settings.AI_MATCHING_URL = ""
    job = run("ai_matching", {"candidate_ids": [1], "job_posting_id": 7})
    assert (job.status, job.error_class) == (JobStatus.FAILED, "configuration")
    assert job.message == "django.core.exceptions.ImproperlyConfigured: AI_MATCHING_URL is not set"


@pytest.mark.parametrize(
    "error_class, exception",
    [
        ("transient", "httpx.ConnectTimeout"),
        ("configuration", "django.core.exceptions.ImproperlyConfigured"),
        ("data", "django.core.exceptions.ValidationError"),
        ("system", "MemoryError"),
    ],
)
def test_demo_fail_raises_a_real_exception_of_each_class(error_class, exception):
    job = run("demo.fail", {"error_class": error_class, "fail_times": 1})
    assert job.error_class == error_class
    assert job.last_error["type"] == exception
    assert job.status == (JobStatus.RETRYING if error_class in ("transient", "system") else JobStatus.FAILED)


def test_demo_fail_succeeds_once_its_failures_are_used_up():
    job = run("demo.fail", {"error_class": "transient", "fail_times": 0})
    assert job.result == {"succeeded_on_attempt": 1}


def test_async_executors_report_progress_too(settings):
    settings.JOBS = {**settings.JOBS, "PROGRESS_INTERVAL": 0}
    job = run("test.async", {})
    assert job.status == JobStatus.COMPLETED and job.result == {"async": True}
    assert list(job.logs.filter(event_type="progress").values_list("progress", flat=True)) == [50, 100]


def test_the_simulated_service_scores_any_json_text_it_is_sent(client, settings):
    # A lone surrogate ("\ud800" in the JSON) is valid JSON but cannot be UTF-8: it answered a 500.
    settings.DEMO_MODE, settings.DEMO_AI_SERVICE_KEY = True, "test-key"
    settings.DEMO_AI_FAILURE_RATE = settings.DEMO_AI_OVERLOAD_FAILURE_RATE = 0.0
    body = '{"job_posting_id": "p\\ud800", "candidate_ids": ["c\\udfff", 2]}'

    response = client.post(
        "/demo/ai-matching/match", body, content_type="application/json", headers={"Authorization": "Bearer test-key"}
    )

    assert response.status_code == 200
    assert [match["candidate_id"] for match in response.json()["matches"]] == ["c\udfff", 2]
