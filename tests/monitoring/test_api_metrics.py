"""GET /api/monitoring/metrics: the wire format of performance_metrics (whose numbers
tests/monitoring/test_performance_metrics.py works out by hand)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from jobs.models import JobStatus
from monitoring.metrics import TIMEFRAMES
from monitoring.models import EventType
from tests.factories import JobExecutionLogFactory, JobFactory, JobRetryHistoryFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
METRICS = "/api/monitoring/metrics"


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def minutes_ago(n: float) -> datetime:
    return NOW - timedelta(minutes=n)


def completed_attempt(job_type: str, *, minutes: float, ms: int):
    job = JobFactory(job_type=job_type, status=JobStatus.COMPLETED)
    JobRetryHistoryFactory(job=job, started_at=minutes_ago(minutes + 1))
    JobExecutionLogFactory(
        job=job,
        event_type=EventType.COMPLETED,
        status="completed",
        timestamp=minutes_ago(minutes),
        execution_time_ms=ms,
    )
    return job


def failed_attempt(
    job_type: str, *, minutes: float, fingerprint: str = "f00d", message: str = "timed out", retried: bool = False
):
    """A failed attempt: the job's last (failed for good), or one whose job was to be retried."""
    status = JobStatus.RETRYING if retried else JobStatus.FAILED
    job = JobFactory(job_type=job_type, status=status)
    JobRetryHistoryFactory(job=job, started_at=minutes_ago(minutes + 1))
    JobExecutionLogFactory(
        job=job,
        event_type=EventType.ERROR,
        status=status,
        timestamp=minutes_ago(minutes),
        execution_time_ms=40,
        error_details={
            "type": "httpx.ConnectTimeout",
            "message": message,
            "error_class": "transient",
            "fingerprint": fingerprint,
        },
    )
    return job


def test_the_last_hour_by_default(as_viewer):
    completed_attempt("ai_matching", minutes=30, ms=100)
    completed_attempt("ai_matching", minutes=20, ms=300)
    failing = failed_attempt("ai_matching", minutes=10)
    completed_attempt("demo.sleep", minutes=90, ms=5000)  # before the window

    response = as_viewer.get(METRICS)

    assert response.status_code == 200
    body = response.json()
    assert (body["timeframe"], body["job_type"], body["bucket_seconds"]) == ("1h", None, 60)
    assert (body["since"], body["until"]) == ("2026-11-29T02:00:00.000Z", "2026-11-29T03:00:00.000Z")
    assert body["overall"] == {
        "started": 3,
        "retried": 0,
        "succeeded": 2,
        "failed": 1,
        "failed_attempts": 1,
        "retried_failures": 0,
        "cancelled": 0,
        "success_rate": 0.6667,
        "throughput_per_minute": 0.05,
        "mean_ms": 200.0,
        "p50_ms": 200.0,
        "p95_ms": 290.0,
        "p99_ms": 298.0,
    }
    assert [row["job_type"] for row in body["by_job_type"]] == ["ai_matching"]
    assert body["errors_by_class"][0] == {"error_class": "transient", "count": 1}
    assert body["errors_by_type"] == [{"exception_type": "httpx.ConnectTimeout", "count": 1}]
    assert body["top_errors"] == [
        {
            "fingerprint": "f00d",
            "count": 1,
            "first_seen": "2026-11-29T02:50:00.000Z",
            "last_seen": "2026-11-29T02:50:00.000Z",
            "job_types": ["ai_matching"],
            "example_job_id": str(failing.id),
            "exception_type": "httpx.ConnectTimeout",
            "message": "timed out",
            "error_class": "transient",
        }
    ]
    assert len(body["series"]) == 60
    assert body["series"][30] == {
        "bucket_start": "2026-11-29T02:30:00.000Z",
        "started": 0,
        "succeeded": 1,
        "failed": 0,
        "failed_attempts": 0,
        "retried_failures": 0,
        "cancelled": 0,
        "p50_ms": 100.0,
        "p95_ms": 100.0,
    }


def test_failed_attempts_that_were_retried_are_counted_overall_per_job_type_and_per_bucket(as_viewer):
    # The Errors page's "failed, then retried": the API carried failed_attempts only.
    failed_attempt("ai_matching", minutes=10, retried=True)
    failed_attempt("ai_matching", minutes=10)
    failed_attempt("demo.fail", minutes=20, retried=True)

    body = as_viewer.get(METRICS).json()

    assert (body["overall"]["failed_attempts"], body["overall"]["retried_failures"]) == (3, 2)
    assert [(row["job_type"], row["failed"], row["retried_failures"]) for row in body["by_job_type"]] == [
        ("ai_matching", 1, 1),
        ("demo.fail", 0, 1),
    ]
    assert [
        (point["bucket_start"], point["retried_failures"]) for point in body["series"] if point["failed_attempts"]
    ] == [
        ("2026-11-29T02:40:00.000Z", 1),
        ("2026-11-29T02:50:00.000Z", 1),
    ]


@pytest.mark.parametrize("timeframe", list(TIMEFRAMES))
def test_every_timeframe_is_accepted(as_viewer, timeframe):
    completed_attempt("demo.sleep", minutes=5, ms=100)

    body = as_viewer.get(METRICS, {"timeframe": timeframe}).json()

    assert body["timeframe"] == timeframe
    assert body["overall"]["succeeded"] == 1
    assert datetime.fromisoformat(body["until"]) - datetime.fromisoformat(body["since"]) == TIMEFRAMES[timeframe]


def test_a_longer_timeframe_reaches_further_back(as_viewer):
    completed_attempt("demo.sleep", minutes=90, ms=100)

    assert as_viewer.get(METRICS, {"timeframe": "1h"}).json()["overall"]["succeeded"] == 0
    assert as_viewer.get(METRICS, {"timeframe": "6h"}).json()["overall"]["succeeded"] == 1


def test_one_job_type_only(as_viewer):
    completed_attempt("ai_matching", minutes=5, ms=100)
    completed_attempt("demo.sleep", minutes=5, ms=900)

    body = as_viewer.get(METRICS, {"job_type": "demo.sleep"}).json()

    assert body["job_type"] == "demo.sleep"
    assert [row["job_type"] for row in body["by_job_type"]] == ["demo.sleep"]
    assert (body["overall"]["succeeded"], body["overall"]["p50_ms"]) == (1, 900.0)


def test_a_job_type_neither_registered_nor_in_the_history_is_422_listing_the_known_ones(as_viewer):
    # A typo answered zeros: "ai_matchng did nothing in the last hour" instead of "no such type".
    completed_attempt("ai_matching", minutes=5, ms=100)

    response = as_viewer.get(METRICS, {"job_type": "ai_matchng"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "job_type"
    assert response.json()["detail"].startswith("unknown job type 'ai_matchng'; known job types: ")
    assert "ai_matching" in response.json()["known_job_types"]


def test_a_job_type_no_longer_registered_still_answers_its_history(as_viewer):
    completed_attempt("retired.export", minutes=5, ms=700)

    response = as_viewer.get(METRICS, {"job_type": "retired.export"})

    assert response.status_code == 200
    assert (response.json()["overall"]["succeeded"], response.json()["overall"]["p50_ms"]) == (1, 700.0)


@pytest.mark.parametrize("timeframe", ["2h", "1H", "", "60m", "1d"])
def test_an_unknown_timeframe_is_422_listing_the_accepted_ones(as_viewer, timeframe):
    response = as_viewer.get(METRICS, {"timeframe": timeframe})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "timeframe",
            "message": f"unknown timeframe {timeframe!r}: use one of 15m, 1h, 6h, 24h, 7d, 30d",
        }
    ]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"job_type": "demo\x00sleep"}, "job_type"),
        ({"job_type": "x" * 101}, "job_type"),
        ({"timeframes": "1h"}, "timeframes"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(as_viewer, params, field):
    response = as_viewer.get(METRICS, params)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_one_error_group_only(as_viewer):
    completed_attempt("ai_matching", minutes=30, ms=100)
    failed_attempt("ai_matching", minutes=20, fingerprint="0123456789abcdef", retried=True)
    latest = failed_attempt("demo.sleep", minutes=10, fingerprint="0123456789abcdef", message="timed out after 5s")
    failed_attempt("ai_matching", minutes=5, fingerprint="fedcba9876543210")

    response = as_viewer.get(METRICS, {"error": "0123456789ABCDEF"})

    assert response.status_code == 200
    body = response.json()
    assert body["error"] == "0123456789abcdef"
    overall = body["overall"]
    assert (overall["started"], overall["succeeded"], overall["failed_attempts"], overall["failed"]) == (0, 0, 2, 1)
    assert overall["success_rate"] is None  # not 0.0: the jobs also completed (once, 30 minutes ago)
    assert [row["success_rate"] for row in body["by_job_type"]] == [None, None]
    assert [(row["job_type"], row["failed_attempts"]) for row in body["by_job_type"]] == [
        ("ai_matching", 1),
        ("demo.sleep", 1),
    ]
    assert [(group["fingerprint"], group["count"]) for group in body["top_errors"]] == [("0123456789abcdef", 2)]
    assert body["top_errors"][0]["example_job_id"] == str(latest.id)
    assert body["error_groups"] == 1
    assert sum(point["failed_attempts"] for point in body["series"]) == 2
    assert as_viewer.get(METRICS).json()["error"] is None


@pytest.mark.parametrize("error", ["f00d", "0123456789abcdeg", "0123456789abcdef0", ""])
def test_a_malformed_error_is_422_naming_it(as_viewer, error):
    response = as_viewer.get(METRICS, {"error": error})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["error"]
    assert "16 hex digits" in response.json()["errors"][0]["message"]


def test_a_timeframe_given_twice_is_refused(as_viewer):
    response = as_viewer.get(f"{METRICS}?timeframe=1h&timeframe=24h")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "timeframe"


def test_queries_are_the_same_whatever_the_data(client, alice, bearer, django_assert_max_num_queries):
    for n in range(150):
        completed_attempt(f"type-{n % 5}", minutes=1 + n % 50, ms=n)
        failed_attempt(f"type-{n % 5}", minutes=1 + n % 50, fingerprint=f"fp-{n % 15}", message=f"error {n}")
    headers = bearer(alice)

    # token lookup (with the permissions on Postgres), its last_used_at, permissions; performance_metrics' nine
    with django_assert_max_num_queries(12):
        response = client.get(METRICS, {"timeframe": "24h"}, headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert (body["overall"]["succeeded"], body["overall"]["failed"]) == (150, 150)
    assert len(body["by_job_type"]) == 5
    assert len(body["top_errors"]) == 10


def test_needs_the_metrics_permission(client, nobody, bearer):
    assert client.get(METRICS).status_code == 401

    response = client.get(METRICS, headers=bearer(nobody))

    assert response.status_code == 403
    assert response.json() == {"detail": "permission required: monitoring.view_jobexecutionlog", "errors": []}


def test_permission_is_checked_before_the_parameters(client, nobody):
    client.force_login(nobody)

    assert client.get(METRICS, {"timeframe": "2h"}).status_code == 403


def test_failures_without_one_of_the_four_error_classes_count_as_unknown(as_viewer):
    failed_attempt("ai_matching", minutes=5)
    JobExecutionLogFactory(
        job=JobFactory(status=JobStatus.FAILED),
        event_type=EventType.ERROR,
        status="failed",
        timestamp=minutes_ago(4),
        error_details={"type": "OSError", "message": "disk full", "error_class": "network"},  # an older version's
    )
    JobExecutionLogFactory(
        job=JobFactory(status=JobStatus.FAILED),
        event_type=EventType.ERROR,
        status="failed",
        timestamp=minutes_ago(3),
        error_details={"type": "OSError", "message": "disk full"},
    )

    body = as_viewer.get(METRICS).json()

    assert body["errors_by_class"] == [
        {"error_class": "transient", "count": 1},
        {"error_class": "configuration", "count": 0},
        {"error_class": "data", "count": 0},
        {"error_class": "system", "count": 0},
        {"error_class": "unknown", "count": 2},
    ]
