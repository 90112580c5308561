"""GET /api/monitoring/jobs and /api/monitoring/jobs/{job_id}."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from jobs.manager import job_manager
from jobs.models import Job, JobStatus, RetryStatus
from monitoring.models import EventType
from monitoring.selectors import MAX_TIMELINE_EVENTS
from tests.factories import AlertHistoryFactory, JobExecutionLogFactory, JobFactory, JobRetryHistoryFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
LIST = "/api/monitoring/jobs"


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def minutes_ago(n):
    return NOW - timedelta(minutes=n)


# --- the list --------------------------------------------------------------------------


def test_lists_active_jobs_newest_activity_first(as_viewer):
    older = JobFactory(
        running=True,
        job_type="ai_matching",
        progress=40,
        message="batch 2/5",
        created_at=minutes_ago(5),
        started_at=minutes_ago(4),
        updated_at=minutes_ago(3),
        heartbeat_at=minutes_ago(2),
    )
    newer = JobFactory(job_type="demo.sleep", updated_at=minutes_ago(1))
    JobFactory(completed=True, updated_at=NOW)  # finished: not listed

    response = as_viewer.get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == [str(newer.id), str(older.id)]
    assert (body["limit"], body["offset"], body["next_offset"]) == (50, 0, None)
    assert body["items"][1] == {
        "id": str(older.id),
        "job_type": "ai_matching",
        "status": "running",
        "progress": 40,
        "message": "batch 2/5",
        "attempts": 1,
        "max_attempts": 3,
        "error_class": None,
        "worker": "worker-1:1234",
        "created_at": "2026-11-29T02:55:00.000Z",
        "updated_at": "2026-11-29T02:57:00.000Z",
        "started_at": "2026-11-29T02:56:00.000Z",
        "attempt_started_at": "2026-11-29T02:56:00.000Z",
        "finished_at": None,
        "next_attempt_at": None,
        "cancel_requested_at": None,
        "heartbeat_at": "2026-11-29T02:58:00.000Z",
        "held": False,
    }


def test_filters_by_job_type_and_status(as_viewer):
    matching = JobFactory(job_type="ai_matching", status=JobStatus.RETRYING, error_class="transient")
    JobFactory(job_type="ai_matching", status=JobStatus.QUEUED)
    JobFactory(job_type="demo.sleep", status=JobStatus.RETRYING)

    body = as_viewer.get(LIST, {"job_type": "ai_matching", "status": "retrying"}).json()

    assert [item["id"] for item in body["items"]] == [str(matching.id)]
    assert body["items"][0]["error_class"] == "transient"


@time_machine.travel(NOW, tick=False)
def test_attention_lists_the_running_jobs_the_dashboard_flags(as_viewer):
    """Flagged jobs are the least recently updated: the last pages of a list of 200 running."""
    silent = JobFactory(job_type="ai_matching", running=True, started_at=minutes_ago(5), updated_at=minutes_ago(5))
    JobFactory.create_batch(2, job_type="ai_matching", running=True, started_at=minutes_ago(5), updated_at=NOW)
    JobFactory(status=JobStatus.QUEUED, updated_at=minutes_ago(60))

    body = as_viewer.get(LIST, {"attention": "true"}).json()

    assert [item["id"] for item in body["items"]] == [str(silent.id)]
    assert body["items"][0]["heartbeat_at"] == "2026-11-29T03:00:00.000Z"  # its worker is alive: the job is stuck
    assert len(as_viewer.get(LIST).json()["items"]) == 4
    refused = as_viewer.get(LIST, {"attention": "maybe"})
    assert refused.status_code == 422 and "attention" in refused.content.decode()


@pytest.mark.parametrize("status", ["completed", "failed", "sleeping", ""])
def test_status_must_be_an_active_one(as_viewer, status):
    response = as_viewer.get(LIST, {"status": status})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "status", "message": "Input should be 'queued', 'running' or 'retrying'"}
    ]


@pytest.mark.parametrize(
    "params, field",
    [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"limit": "ten"}, "limit"), ({"offset": -1}, "offset")],
)
def test_page_bounds_are_checked(as_viewer, params, field):
    response = as_viewer.get(LIST, params)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert response.json()["detail"].startswith(f"invalid request: {field}: ")


@pytest.mark.parametrize("written", ["5_0", "+5", " 5", "5.5", "0x10", "٥"])
def test_page_numbers_are_digits_as_written_not_what_python_could_read_into_them(as_viewer, written):
    response = as_viewer.get(LIST, {"limit": written})

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "limit", "message": "must be a whole number, in digits"}]


def test_job_type_with_control_characters_is_refused_not_sent_to_the_database(as_viewer):
    response = as_viewer.get(LIST, {"job_type": "demo\x00sleep"})

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "job_type", "message": "must not contain control characters"}]


def test_pages_follow_next_offset_until_null(as_viewer):
    jobs = [JobFactory(updated_at=minutes_ago(n)) for n in range(5)]

    first = as_viewer.get(LIST, {"limit": 2}).json()
    second = as_viewer.get(LIST, {"limit": 2, "offset": first["next_offset"]}).json()
    last = as_viewer.get(LIST, {"limit": 2, "offset": second["next_offset"]}).json()

    seen = [item["id"] for page in (first, second, last) for item in page["items"]]
    assert seen == [str(job.id) for job in jobs]
    assert (first["next_offset"], second["next_offset"], last["next_offset"]) == (2, 4, None)


def test_a_last_page_that_is_exactly_full_has_no_next_offset(as_viewer):
    """Otherwise a client following next_offset would ask for one more page, always empty."""
    for n in range(4):
        JobFactory(updated_at=minutes_ago(n))

    second = as_viewer.get(LIST, {"limit": 2, "offset": 2}).json()

    assert (len(second["items"]), second["next_offset"], second["truncated"]) == (2, None, False)


def test_list_queries_stay_bounded_with_hundreds_of_jobs(client, alice, bearer, django_assert_max_num_queries):
    for n in range(300):
        JobFactory(status=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING][n % 3], updated_at=minutes_ago(n))
    headers = bearer(alice)

    # token lookup, its last_used_at, user and group permissions, the page itself
    with django_assert_max_num_queries(5):
        response = client.get(LIST, {"limit": 200}, headers=headers)

    assert response.status_code == 200
    assert len(response.json()["items"]) == 200
    assert response.json()["next_offset"] == 200


# --- recently finished ------------------------------------------------------------------

FINISHED = "/api/monitoring/jobs/finished"


@time_machine.travel(NOW, tick=False)
def test_what_failed_in_the_last_hour(as_viewer):
    recent = JobFactory(failed=True, job_type="ai_matching", finished_at=minutes_ago(5))
    latest = JobFactory(failed=True, job_type="ai_matching", finished_at=minutes_ago(1))
    JobFactory(failed=True, job_type="demo.fail", finished_at=minutes_ago(2))  # another type
    JobFactory(completed=True, job_type="ai_matching", finished_at=minutes_ago(1))  # did not fail
    JobFactory(failed=True, job_type="ai_matching", finished_at=minutes_ago(61))  # before the window
    JobFactory(running=True, job_type="ai_matching")  # not finished

    body = as_viewer.get(FINISHED, {"status": "failed", "job_type": "ai_matching"}).json()

    assert [item["id"] for item in body["items"]] == [str(latest.id), str(recent.id)]
    assert body["items"][0]["status"] == "failed" and body["items"][0]["error_class"] == "transient"
    assert (body["limit"], body["offset"], body["next_offset"]) == (50, 0, None)


@time_machine.travel(NOW, tick=False)
def test_finished_jobs_of_every_outcome_page_by_next_offset_within_the_window(as_viewer):
    statuses = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED]
    jobs = [JobFactory(status=statuses[n % 3], finished_at=minutes_ago(n * 90)) for n in range(5)]  # 0h..6h ago

    first = as_viewer.get(FINISHED, {"window": "24h", "limit": 3}).json()
    second = as_viewer.get(FINISHED, {"window": "24h", "limit": 3, "offset": first["next_offset"]}).json()

    assert [item["id"] for page in (first, second) for item in page["items"]] == [str(job.id) for job in jobs]
    assert (first["next_offset"], second["next_offset"]) == (3, None)
    assert [item["id"] for item in as_viewer.get(FINISHED).json()["items"]] == [str(jobs[0].id)]  # 1h by default


@time_machine.travel(NOW, tick=False)
def test_a_last_page_of_finished_jobs_that_is_exactly_full_has_no_next_offset(as_viewer):
    for n in range(4):
        JobFactory(completed=True, finished_at=minutes_ago(n + 1))

    second = as_viewer.get(FINISHED, {"limit": 2, "offset": 2}).json()

    assert (len(second["items"]), second["next_offset"], second["truncated"]) == (2, None, False)


@time_machine.travel(NOW, tick=False)
def test_following_next_offset_stops_at_the_deepest_page_the_list_serves_and_says_more_follow(as_viewer):
    """Finished jobs accept offsets up to 1,000: with 200 a page, the page at 1,000 is the last."""
    Job.objects.bulk_create(JobFactory.build_batch(1_250, failed=True, finished_at=minutes_ago(5)))
    seen, offset, pages = set(), 0, []
    while offset is not None:
        response = as_viewer.get(FINISHED, {"status": "failed", "limit": 200, "offset": offset})
        assert response.status_code == 200, response.json()
        body = response.json()
        seen.update(item["id"] for item in body["items"])
        pages.append((body["offset"], body["next_offset"], body["truncated"]))
        offset = body["next_offset"]

    assert pages[-2:] == [(800, 1_000, False), (1_000, None, True)]
    assert len(seen) == 1_200
    narrowed = as_viewer.get(FINISHED, {"status": "failed", "limit": 200, "offset": 1_000, "job_type": "nope"})
    assert (narrowed.json()["next_offset"], narrowed.json()["truncated"]) == (None, False)


def test_finished_pages_read_with_the_first_pages_until_do_not_shift_as_jobs_finish(as_viewer):
    """Newest first: a job finishing between two pages pushed the first page's last row onto
    the second (a drill paging at 5 a page while the demo ran read 6 of 37 rows twice)."""
    jobs = [JobFactory(completed=True, finished_at=minutes_ago(n + 1)) for n in range(4)]
    with time_machine.travel(NOW + timedelta(microseconds=123_456), tick=False):
        first = as_viewer.get(FINISHED, {"limit": 2}).json()
    JobFactory(failed=True, finished_at=NOW + timedelta(seconds=10))  # finishes between the two pages

    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):
        second = as_viewer.get(FINISHED, {"limit": 2, "offset": first["next_offset"], "until": first["until"]}).json()
        unpinned = as_viewer.get(FINISHED, {"limit": 2, "offset": first["next_offset"]}).json()

    assert first["until"] == "2026-11-29T03:00:00.123Z"  # now, to the millisecond the answer gives
    assert [item["id"] for page in (first, second) for item in page["items"]] == [str(job.id) for job in jobs]
    assert (second["until"], second["next_offset"]) == (first["until"], None)
    assert unpinned["items"][0]["id"] == str(jobs[1].id)  # without `until`: read twice


@time_machine.travel(NOW, tick=False)
def test_until_ends_the_window_and_a_later_one_counts_as_now_an_earlier_than_1970_as_1970(as_viewer):
    two_hours_ago = JobFactory(failed=True, finished_at=minutes_ago(120))
    JobFactory(failed=True, finished_at=minutes_ago(30))  # after the `until` asked for

    earlier = as_viewer.get(FINISHED, {"until": "2026-11-29T01:30:00+00:00", "window": "1h"}).json()
    later = as_viewer.get(FINISHED, {"until": "2027-01-01T00:00:00Z"}).json()

    assert [item["id"] for item in earlier["items"]] == [str(two_hours_ago.id)]
    assert (earlier["until"], later["until"]) == ("2026-11-29T01:30:00.000Z", "2026-11-29T03:00:00.000Z")
    year_one = as_viewer.get(FINISHED, {"until": "0001-01-01T00:00:00+01:00", "window": "7d"}).json()
    assert (year_one["items"], year_one["until"]) == ([], "1970-01-01T00:00:00.000Z")  # nothing finished before


@pytest.mark.parametrize(
    "until, message",
    [
        (
            "2026-11-29T03:00:00",
            "expected a moment with its timezone, e.g. 2026-11-29T03:00:00Z (in a URL, a + is written %2B)",
        ),
        (
            "2026-11-29T03:00:00 00:00",
            "expected a moment with its timezone, e.g. 2026-11-29T03:00:00Z (in a URL, a + is written %2B)",
        ),
        # Seconds since 1970: pydantic takes them, the schema's date-time does not (a CI run's fuzzing).
        ("0.0", "expected a moment with its timezone, e.g. 2026-11-29T03:00:00Z (in a URL, a + is written %2B)"),
        ("1700000000", "expected a moment with its timezone, e.g. 2026-11-29T03:00:00Z (in a URL, a + is written %2B)"),
        ("2026-11-29", "expected a moment with its timezone, e.g. 2026-11-29T03:00:00Z (in a URL, a + is written %2B)"),
    ],
)
def test_an_until_without_timezone_is_refused_naming_it(as_viewer, until, message):
    response = as_viewer.get(FINISHED, {"until": until, "window": "7d"})

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "until", "message": message}]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"window": "2h"}, "window"),
        ({"status": "running"}, "status"),
        ({"offset": 1001}, "offset"),
        ({"limit": 0}, "limit"),
    ],
)
def test_finished_filters_are_checked(as_viewer, params, field):
    response = as_viewer.get(FINISHED, params)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_finished_list_queries_stay_bounded(client, alice, bearer, django_assert_max_num_queries):
    for n in range(150):
        JobFactory(
            status=[JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED][n % 3],
            finished_at=NOW - timedelta(seconds=n),
        )
    headers = bearer(alice)

    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(6):  # token+user, one per outcome
        response = client.get(FINISHED, {"limit": 100}, headers=headers)

    assert response.status_code == 200
    assert len(response.json()["items"]) == 100


# --- one job ----------------------------------------------------------------------------


def test_job_detail_has_everything_an_operator_needs(as_viewer):
    job = JobFactory(
        failed=True,
        job_type="ai_matching",
        parameters={"candidate_ids": [1, 2], "job_posting_id": 7},
        submitted_by="alice",
        started_at=minutes_ago(10),
        finished_at=minutes_ago(2),
        last_error={
            "type": "httpx.ConnectTimeout",
            "message": "timed out",
            "error_class": "transient",
            "retryable": False,
            "fingerprint": "0123456789abcdef",
            "hint": "Not retried: all 3 attempts used.",
        },
    )
    JobExecutionLogFactory(job=job, event_type=EventType.QUEUED, status="queued", progress=0, timestamp=minutes_ago(10))
    JobExecutionLogFactory(
        job=job,
        event_type=EventType.ERROR,
        status="failed",
        message="httpx.ConnectTimeout: timed out",
        details={"attempt": 3, "hint": "Not retried: all 3 attempts used."},
        error_details={"type": "httpx.ConnectTimeout", "traceback": "Traceback (most recent call last):\n  ..."},
        execution_time_ms=1500,
        timestamp=minutes_ago(2),
    )
    JobRetryHistoryFactory(
        job=job, attempt_number=1, status=RetryStatus.FAILED, started_at=minutes_ago(10), completed_at=minutes_ago(9)
    )
    JobRetryHistoryFactory(
        job=job,
        attempt_number=2,
        status=RetryStatus.FAILED,
        started_at=minutes_ago(9) + timedelta(seconds=2.5),
        completed_at=minutes_ago(5),
        retry_delay_seconds=2,
        error_message="httpx.ConnectTimeout: timed out",
    )
    alert = AlertHistoryFactory(job=job, triggered_at=minutes_ago(2))
    AlertHistoryFactory()  # another job's

    response = as_viewer.get(f"{LIST}/{job.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["parameters"] == {"candidate_ids": [1, 2], "job_posting_id": 7}
    assert (body["status"], body["attempts"], body["max_attempts"]) == ("failed", 3, 3)
    assert (body["submitted_by"], body["duration_ms"]) == ("alice", 8 * 60 * 1000)
    assert body["error"] == {
        "type": "httpx.ConnectTimeout",
        "message": "timed out",
        "error_class": "transient",
        "retryable": False,
        "hint": "Not retried: all 3 attempts used.",
        "fingerprint": "0123456789abcdef",
        "traceback": "Traceback (most recent call last):\n  ...",
    }
    assert [event["event_type"] for event in body["timeline"]] == ["queued", "error"]
    assert body["timeline"][1]["execution_time_ms"] == 1500
    assert (body["timeline_total"], body["timeline_truncated"]) == (2, False)
    assert [(a["attempt_number"], a["planned_delay_s"], a["waited_s"]) for a in body["retry_history"]] == [
        (1, None, None),
        (2, 2, 2.5),
    ]
    assert [a["id"] for a in body["alerts"]] == [str(alert.id)]
    assert body["alerts"][0]["severity"] == "error"


def test_a_long_timeline_is_the_latest_events_and_says_so(as_viewer, django_assert_max_num_queries):
    job = JobFactory(running=True)
    JobExecutionLogFactory.create_batch(MAX_TIMELINE_EVENTS + 3, job=job)

    with django_assert_max_num_queries(9):
        body = as_viewer.get(f"{LIST}/{job.id}").json()

    assert (len(body["timeline"]), body["timeline_total"], body["timeline_truncated"]) == (500, 503, True)


def job_with_events(count: int, **fields) -> Job:
    """A job whose events are a second apart, numbered by their message: event 0 first."""
    job = JobFactory(**fields)
    for n in range(count):
        JobExecutionLogFactory(job=job, timestamp=minutes_ago(60) + timedelta(seconds=n), message=f"event {n}")
    return job


def test_a_jobs_whole_timeline_pages_from_its_first_event(as_viewer, django_assert_max_num_queries):
    """The detail shows the latest 500 events; the events list reaches the earlier ones, oldest first."""
    job = job_with_events(MAX_TIMELINE_EVENTS + 3, running=True)
    JobExecutionLogFactory()  # another job's

    with django_assert_max_num_queries(6):
        first = as_viewer.get(f"{LIST}/{job.id}/events").json()
    last = as_viewer.get(f"{LIST}/{job.id}/events", {"offset": first["next_offset"]}).json()

    assert [event["message"] for event in first["items"][:2]] == ["event 0", "event 1"]
    assert (len(first["items"]), first["total"], first["next_offset"], first["truncated"]) == (500, 503, 500, False)
    assert [event["message"] for event in last["items"]] == ["event 500", "event 501", "event 502"]
    assert (last["next_offset"], last["truncated"]) == (None, False)


def test_timestamps_are_utc_with_z_and_always_three_digits_of_milliseconds(as_viewer):
    """As docs/api.md says: one fixed format, which a client may parse with one pattern. A zero
    fraction had been dropped (`02:58:00Z` beside `02:58:01.120Z`), and an `until` sent with an
    offset came back with it."""
    job = JobFactory(running=True, updated_at=minutes_ago(2))
    JobExecutionLogFactory(job=job, timestamp=datetime(2026, 11, 29, 2, 58, 1, 120_456, tzinfo=UTC))
    JobFactory(completed=True, finished_at=minutes_ago(90))

    events = as_viewer.get(f"{LIST}/{job.id}/events").json()["items"]
    listed = as_viewer.get(LIST).json()["items"]
    finished = as_viewer.get(FINISHED, {"until": "2026-11-29T03:30:00+02:00"}).json()

    assert [event["timestamp"] for event in events] == ["2026-11-29T02:58:01.120Z"]
    assert listed[0]["updated_at"] == "2026-11-29T02:58:00.000Z"
    assert finished["until"] == "2026-11-29T01:30:00.000Z"
    assert [item["finished_at"] for item in finished["items"]] == ["2026-11-29T01:30:00.000Z"]


def test_the_events_list_takes_a_short_id_and_names_what_it_refuses(as_viewer):
    job = job_with_events(3, id=uuid.UUID("3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c"))
    missing = uuid.uuid4()

    by_short_id = as_viewer.get(f"{LIST}/3f2a1b4c/events", {"limit": 2}).json()
    not_found = as_viewer.get(f"{LIST}/{missing}/events")
    refused = {
        params: as_viewer.get(f"{LIST}/{job.id}/events", dict([params])).json()["errors"][0]
        for params in [("limit", 501), ("offset", -1), ("offset", 100_001), ("page", 2)]
    }

    assert ([e["message"] for e in by_short_id["items"]], by_short_id["next_offset"]) == (["event 0", "event 1"], 2)
    assert (not_found.status_code, not_found.json()["detail"]) == (404, f"job {missing} not found")
    assert [error["field"] for error in refused.values()] == ["limit", "offset", "offset", "page"]
    assert refused[("page", 2)]["message"] == "unknown query parameter; known: limit, offset"


def test_a_job_without_events_has_an_empty_events_list_not_a_404(as_viewer, django_assert_max_num_queries):
    job = JobFactory()

    with django_assert_max_num_queries(6):  # with events, one less: the job is known to exist
        response = as_viewer.get(f"{LIST}/{job.id}/events")

    assert response.status_code == 200
    assert (response.json()["items"], response.json()["total"], response.json()["next_offset"]) == ([], 0, None)


def test_an_empty_timeline_says_whether_retention_pruned_it(as_viewer, settings):
    """An empty timeline is either nothing recorded or all of it pruned: a script must know which."""
    settings.RETENTION_DAYS = {"job_execution_logs": 45, "system_health_metrics": 30}
    pruned = JobFactory(completed=True, finished_at=timezone.now() - timedelta(days=60))
    recent = JobFactory(completed=True, finished_at=timezone.now() - timedelta(days=1))
    kept = job_with_events(1, completed=True, finished_at=timezone.now() - timedelta(days=60))

    answers = {job: as_viewer.get(f"{LIST}/{job.id}").json() for job in (pruned, recent, kept)}

    assert [(len(a["timeline"]), a["timeline_pruned"]) for a in answers.values()] == [(0, True), (0, False), (1, False)]


def test_a_timeline_starting_at_a_retry_after_a_prune_says_so(as_viewer, retried_after_prune):
    """Drill: a failed job retried 67 days on had a timeline starting at "retry", with
    timeline_pruned false: nothing said its first attempt's events had been pruned."""
    pruned, recent = retried_after_prune

    answers = [as_viewer.get(f"{LIST}/{job.id}").json() for job in (pruned, recent)]

    assert [(a["timeline"][0]["event_type"], a["timeline_earlier_pruned"]) for a in answers] == [
        ("retry", True),
        ("error", False),
    ]


def test_the_traceback_is_found_even_behind_a_long_timeline(as_viewer):
    job = JobFactory(
        status=JobStatus.RETRYING, last_error={"type": "OSError", "message": "disk", "error_class": "system"}
    )
    JobExecutionLogFactory(
        job=job, event_type=EventType.ERROR, error_details={"traceback": "the traceback"}, timestamp=minutes_ago(60)
    )
    for n in range(MAX_TIMELINE_EVENTS):
        JobExecutionLogFactory(job=job, timestamp=minutes_ago(59) + timedelta(seconds=n))

    body = as_viewer.get(f"{LIST}/{job.id}").json()

    assert body["error"]["traceback"] == "the traceback"
    assert body["error"]["hint"] == ""


def test_a_duration_across_two_nodes_clocks_is_never_negative(as_viewer):
    """Drill: started on a node whose clock ran ahead, finished on another: duration_ms was -51472."""
    job = JobFactory(completed=True, started_at=minutes_ago(1), finished_at=minutes_ago(1) - timedelta(seconds=0.5))

    assert as_viewer.get(f"{LIST}/{job.id}").json()["duration_ms"] == 0


def test_a_job_that_never_failed_has_no_error(as_viewer):
    job = JobFactory(completed=True)

    body = as_viewer.get(f"{LIST}/{job.id}").json()

    assert (body["error"], body["result"], body["progress"]) == (None, {"ok": True}, 100)


@time_machine.travel(NOW, tick=False)
def test_a_job_of_a_paused_type_says_who_paused_it_and_why_it_waits(as_viewer):
    """A script polling a queued job learns why it does not start."""
    held = JobFactory(job_type="ai_matching", status=JobStatus.QUEUED)
    job_manager.pause_job_type_sync("ai_matching", by="bob", reason="AI vendor down")

    body = as_viewer.get(f"{LIST}/{held.id}").json()

    assert body["job_type_paused"] == {
        "job_type": "ai_matching",
        "paused_at": "2026-11-29T03:00:00.000Z",
        "paused_by": "bob",
        "reason": "AI vendor down",
    }
    assert body["held"] is True
    other = as_viewer.get(f"{LIST}/{JobFactory(job_type='demo.sleep').id}").json()
    assert (other["job_type_paused"], other["held"]) == (None, False)


def test_the_list_marks_each_job_held_by_a_pause(as_viewer, django_assert_max_num_queries):
    """A script reading the queue tells the jobs that wait for a resume from those that wait for a worker."""
    held = JobFactory(job_type="ai_matching", status=JobStatus.QUEUED)
    running = JobFactory(job_type="ai_matching", running=True)  # started before the pause: it runs on
    waiting = JobFactory(job_type="demo.sleep", status=JobStatus.QUEUED)
    job_manager.pause_job_type_sync("ai_matching", by="bob")

    # session, user (its permissions read with it on Postgres, apart elsewhere), the page (the pauses read in it)
    with django_assert_max_num_queries(3 if connection.vendor == "postgresql" else 4):
        items = as_viewer.get(LIST).json()["items"]

    assert {item["id"]: item["held"] for item in items} == {
        str(held.id): True,
        str(running.id): False,
        str(waiting.id): False,
    }


def test_unknown_job_is_404_and_malformed_id_is_422(as_viewer):
    missing = uuid.uuid4()

    response = as_viewer.get(f"{LIST}/{missing}")
    assert response.status_code == 404
    assert response.json() == {"detail": f"job {missing} not found", "errors": []}

    response = as_viewer.get(f"{LIST}/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "job_id"


def test_polling_with_the_etag_is_a_304_until_the_job_changes(client, alice, bearer):
    """A script waiting for a job sends the ETag back: nothing changed is a 304 with no body; a
    progress report, a heartbeat or an alert acknowledged is a 200 with a new tag."""
    job = JobFactory(running=True, progress=40, heartbeat_at=minutes_ago(1))
    url, headers = f"{LIST}/{job.id}", bearer(alice)
    first = client.get(url, headers=headers)

    unchanged = client.get(url, headers={**headers, "If-None-Match": first["ETag"]})
    in_a_list = client.get(url, headers={**headers, "If-None-Match": f'"other", {first["ETag"].removeprefix("W/")}'})
    Job.objects.filter(id=job.id).update(heartbeat_at=NOW)  # the worker is alive: no other change
    beaten = client.get(url, headers={**headers, "If-None-Match": first["ETag"]})
    Job.objects.filter(id=job.id).update(progress=60)
    progressed = client.get(url, headers={**headers, "If-None-Match": beaten["ETag"]})

    assert first.status_code == 200 and first["ETag"].startswith('W/"')
    assert (unchanged.status_code, unchanged.content, unchanged["ETag"]) == (304, b"", first["ETag"])
    assert unchanged["Cache-Control"] == first["Cache-Control"]  # no-store all the same
    assert in_a_list.status_code == 304  # weak comparison, any of the tags listed
    assert beaten.status_code == 200 and beaten["ETag"] != first["ETag"]
    assert (progressed.status_code, progressed.json()["progress"]) == (200, 60)
    assert len({first["ETag"], beaten["ETag"], progressed["ETag"]}) == 3


def test_the_etag_answers_no_one_without_credentials_or_the_permission(client, nobody, alice, bearer):
    job = JobFactory(completed=True)
    etag = client.get(f"{LIST}/{job.id}", headers=bearer(alice))["ETag"]

    assert client.get(f"{LIST}/{job.id}", headers={"If-None-Match": etag}).status_code == 401
    assert client.get(f"{LIST}/{job.id}", headers={**bearer(nobody), "If-None-Match": etag}).status_code == 403


# --- one job by its short id -----------------------------------------------------------------

SHORT_ID_REFUSED = "expected a job id, or its first 8 or more hex digits (e.g. 3f2a1b4c or 3f2a1b4c-9d0e)"


def job_with_id(id: str, **fields) -> Job:
    return JobFactory(id=uuid.UUID(id), **fields)


@pytest.mark.parametrize(
    "short_id",
    [
        pytest.param("3f2a1b4c", id="the 8 digits shown everywhere"),
        pytest.param("3F2A1B4C", id="in capitals"),
        pytest.param("3f2a1b4c-9d0e", id="with the id's dash"),
        pytest.param("3f2a1b4c9d0e4f6a", id="16 digits without dashes"),
    ],
)
def test_a_short_id_answers_what_the_whole_id_does(as_viewer, short_id):
    job = job_with_id("3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c", failed=True)
    JobExecutionLogFactory(job=job, event_type=EventType.ERROR, error_details={"traceback": "the traceback"})
    AlertHistoryFactory(job=job)
    job_with_id("3f2a1b4d-0000-4000-8000-000000000000")  # the next short id: not a match

    whole = as_viewer.get(f"{LIST}/{job.id}")
    response = as_viewer.get(f"{LIST}/{short_id}")

    assert (whole.status_code, response.status_code) == (200, 200)
    assert response.json()["id"] == "3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c"
    assert len(response.json()["alerts"]) == 1
    assert response.json() == whole.json()


def test_a_short_id_costs_one_query_more_than_the_whole_id(client, alice, bearer, django_assert_max_num_queries):
    job = job_with_id("3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c", running=True)
    JobExecutionLogFactory.create_batch(MAX_TIMELINE_EVENTS + 3, job=job)
    headers = bearer(alice)
    client.get(f"{LIST}/{job.id}", headers=headers)  # records the token's last use, once a minute

    # the token and its user, their permissions (a subquery on Postgres), the job, its latest events
    # and their count, its attempts, its alerts, its job type's pause
    with django_assert_max_num_queries(8) as whole_queries:
        whole = client.get(f"{LIST}/{job.id}", headers=headers)
    # and first the ids starting with it: a range of the primary key's index
    with django_assert_max_num_queries(9) as short_queries:
        short = client.get(f"{LIST}/3f2a1b4c", headers=headers)

    assert len(short_queries) == len(whole_queries) + 1
    assert short.status_code == 200
    assert short.json() == whole.json()


def test_a_short_id_of_several_jobs_is_a_409_listing_them(as_viewer):
    failed = job_with_id("3f2a1b4c-0000-4000-8000-000000000001", job_type="ai_matching", failed=True)
    running = job_with_id("3f2a1b4c-9d0e-4000-8000-000000000002", running=True)
    job_with_id("3f2a1b4d-0000-4000-8000-000000000003")

    response = as_viewer.get(f"{LIST}/3f2a1b4c")

    assert response.status_code == 409
    assert response.json() == {
        "detail": (
            "2 jobs have an id starting with 3f2a1b4c: 3f2a1b4c-0000-4000-8000-000000000001 (ai_matching, failed), "
            "3f2a1b4c-9d0e-4000-8000-000000000002 (demo.sleep, running); give more of the id"
        ),
        "errors": [{"field": "job_id", "message": "the id of 2 jobs starts with it; give more of the id"}],
        "matches": [
            {"id": str(failed.id), "job_type": "ai_matching", "status": "failed"},
            {"id": str(running.id), "job_type": "demo.sleep", "status": "running"},
        ],
        "match_count": 2,
    }
    # More of the id picks one.
    assert as_viewer.get(f"{LIST}/3f2a1b4c-9d0e").json()["id"] == str(running.id)


def test_a_409_lists_ten_jobs_and_counts_them_all(client, alice, bearer, django_assert_max_num_queries):
    for n in range(12):
        job_with_id(f"3f2a1b4c-0000-4000-8000-{n:012x}")
    headers = bearer(alice)

    # the token and its user, its last_used_at, their permissions; ten of the ids, and how many there are
    with django_assert_max_num_queries(5):
        response = client.get(f"{LIST}/3f2a1b4c", headers=headers)

    assert response.status_code == 409
    body = response.json()
    assert (len(body["matches"]), body["match_count"]) == (10, 12)
    assert body["matches"][0]["id"] == "3f2a1b4c-0000-4000-8000-000000000000"
    assert body["detail"].startswith("12 jobs have an id starting with 3f2a1b4c: 3f2a1b4c-0000-4000-8000-000000000000")
    assert body["detail"].endswith("-000000000009 (demo.sleep, queued), and 2 more; give more of the id")


def test_a_short_id_of_no_job_is_a_404_naming_it(as_viewer):
    job_with_id("3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c")

    response = as_viewer.get(f"{LIST}/3f2a1b4d")

    assert response.status_code == 404
    assert response.json() == {"detail": "no job id starts with 3f2a1b4d", "errors": []}


@pytest.mark.parametrize(
    "job_id",
    [
        pytest.param("3f2a1b4", id="7 digits"),
        pytest.param("3f2a1b4z", id="not hex"),
        pytest.param("3f2a-1b4c", id="a dash where an id has none"),
        pytest.param("3f2a1b4c--9d0e", id="two dashes"),
        pytest.param("3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c0", id="longer than an id"),
    ],
)
def test_less_than_a_short_id_is_a_422_saying_what_is_accepted(as_viewer, job_id):
    job_with_id("3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c")

    response = as_viewer.get(f"{LIST}/{job_id}")

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "job_id", "message": SHORT_ID_REFUSED}]


def test_a_short_id_needs_the_same_credentials_as_the_whole_id(client, nobody, viewer, bearer):
    job = job_with_id("3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c")
    path = f"{LIST}/3f2a1b4c"

    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer(nobody)).status_code == 403
    assert client.get(path, headers=bearer(viewer)).json()["id"] == str(job.id)


def test_unknown_api_paths_answer_json_404(as_viewer):
    response = as_viewer.get("/api/monitoring/nothing-here")
    root = as_viewer.get("/api/")  # a drill: Django's HTML 404 page

    assert response.status_code == 404
    assert response.json() == {"detail": "no API endpoint at /api/monitoring/nothing-here", "errors": []}
    assert (root.status_code, root.json()["detail"]) == (404, "no API endpoint at /api/")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("post", "/api/jobs/", 404),  # a trailing slash
        ("put", "/api/monitoring/nothing-here", 404),
        ("post", "/api/", 404),
        ("post", "/api/openapi.json", 405),
        ("delete", "/api/docs", 405),
    ],
)
def test_a_tokens_unsafe_method_on_a_path_without_it_is_json_not_a_csrf_page(alice, bearer, method, path, status):
    """A program's POST with its token to a mistyped path, or to the schema, was Django's HTML page
    "CSRF verification failed" (403): no token is needed there, and nothing there acts."""
    client = Client(enforce_csrf_checks=True)  # as a program sends it; the test client skips the check

    response = getattr(client, method)(path, headers=bearer(alice))

    assert (response.status_code, response["Content-Type"]) == (status, "application/json")
    assert response.json()["errors"] == []
    if status == 405:
        assert response["Allow"] == "GET, HEAD"
        assert response.json()["detail"] == f"method {method.upper()} not allowed here; allowed: GET, HEAD"


def test_a_method_a_path_does_not_have_is_a_json_405_naming_the_allowed_ones(as_viewer):
    response = as_viewer.delete(LIST)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"  # HEAD is answered as GET (below); a drill saw it left out
    assert response.json() == {"detail": "method DELETE not allowed here; allowed: GET, HEAD", "errors": []}


@pytest.mark.parametrize(
    "path", [LIST, "/api/monitoring/health", "/api/monitoring/metrics?timeframe=1h", "/api/monitoring/alerts"]
)
def test_head_answers_like_get_for_uptime_monitors(client, viewer, bearer, path):
    # Uptime monitors (UptimeRobot's default) check a URL with HEAD: a 405 would read as "down".
    headers = bearer(viewer)

    get, head = client.get(path, headers=headers), client.head(path, headers=headers)

    assert get.status_code == 200
    assert (head.status_code, head["Content-Type"]) == (get.status_code, get["Content-Type"])
    assert head.content == b""


def test_head_needs_the_same_credentials_as_get(client):
    response = client.head(LIST)

    assert response.status_code == 401


def test_head_on_a_path_that_only_acts_is_405(client, alice, bearer):
    job = JobFactory(running=True)

    response = client.head(f"/api/jobs/{job.id}/cancel", headers=bearer(alice))

    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert Job.objects.get(id=job.id).status == JobStatus.RUNNING


@pytest.mark.parametrize("debug", [False, True])
def test_a_request_django_refuses_is_a_json_400_with_debug_on_or_off(as_viewer, settings, debug):
    settings.DEBUG = debug  # as `make run` sets it: ninja then answered a 500 with a traceback
    too_many = "&".join(f"a{i}=1" for i in range(1_200))  # DATA_UPLOAD_MAX_NUMBER_FIELDS is 1,000

    response = as_viewer.get(f"{LIST}?{too_many}")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("bad request: The number of GET/POST parameters exceeded")


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_failure_is_a_json_500_and_its_traceback_goes_to_the_log(
    as_viewer, settings, monkeypatch, caplog, debug
):
    """Drill: under new code on the old schema the API answered Django's HTML 500 page, and with
    DEBUG on (make run) a pause race answered its traceback as the body."""
    settings.DEBUG = debug
    monkeypatch.setattr("monitoring.api.active_jobs_page", lambda **filters: 1 / 0)

    response = as_viewer.get(LIST)

    assert (response.status_code, response["Content-Type"]) == (500, "application/json; charset=utf-8")
    assert response.json() == {"detail": "internal error: the server logged it; try again or report it", "errors": []}
    assert "Traceback" not in response.content.decode()
    assert "API request GET /api/monitoring/jobs failed" in caplog.text and "ZeroDivisionError" in caplog.text


def test_a_host_this_server_does_not_serve_is_refused_without_naming_the_setting(as_viewer, settings):
    settings.DEBUG = False

    response = as_viewer.get(LIST, HTTP_HOST="evil.example.org")

    assert response.status_code == 400
    assert response.json()["detail"] == "bad request: this server does not answer to that Host header"


def test_a_parameter_given_twice_is_refused_not_guessed(as_viewer):
    response = as_viewer.get(f"{LIST}?status=queued&status=running")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "status"


def test_an_unknown_query_parameter_is_refused_not_ignored(as_viewer):
    response = as_viewer.get(LIST, {"staus": "running"})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "staus", "message": "unknown query parameter; known: job_type, status, attention, limit, offset"}
    ]


@pytest.mark.parametrize(
    "url, field",
    [
        (f"{LIST}/finished?window=1h&window=1h", "window"),
        (f"{LIST}?limit=1&limit=2", "limit"),
        (f"{LIST}?job_type=a&job_type=b", "job_type"),
        ("/api/monitoring/metrics?timeframe=1h&timeframe=1h", "timeframe"),
    ],
)
def test_a_parameter_given_twice_is_refused_naming_it_not_its_type(as_viewer, url, field):
    response = as_viewer.get(url)

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "message": "given 2 times; give it once"}]


def test_a_database_outage_is_503_with_retry_after(as_viewer, monkeypatch):
    def unavailable(**filters):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("monitoring.api.active_jobs_page", unavailable)

    response = as_viewer.get(LIST)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"detail": "database unavailable; try again shortly", "errors": []}


def test_the_schema_marks_as_required_every_field_every_answer_has(client, alice, bearer):
    """Answers carry every field, defaults included: a client generated from the schema must not
    type them as maybe missing (`held?: boolean`). The keys only some errors add stay optional."""
    schemas = client.get("/api/openapi.json", headers=bearer(alice)).json()["components"]["schemas"]

    assert "held" in schemas["JobSummaryOut"]["required"]
    assert {"held", "result"} <= set(schemas["JobDetailOut"]["required"])
    assert {"retryable", "hint", "fingerprint", "traceback"} <= set(schemas["JobErrorOut"]["required"])
    assert "stale" in schemas["HealthComponentOut"]["required"]
    assert schemas["ErrorOut"]["required"] == ["detail", "errors"]
    assert schemas["JobConflictOut"]["required"] == ["detail"]  # matches, match_count: a short id of several jobs
    assert schemas["SubmitErrorOut"]["required"] == ["detail"]  # known_job_types: an unknown job type


def test_the_schema_declares_the_error_classes_and_event_types_a_client_can_get(client, alice, bearer):
    """A client generated from the schema gets enums to switch on (the design's four error
    classes, the event types, the health components' types), not free strings documented in prose."""
    schemas = client.get("/api/openapi.json", headers=bearer(alice)).json()["components"]["schemas"]

    classes = {"enum": ["transient", "configuration", "data", "system"], "type": "string"}
    for name in ("JobSummaryOut", "JobErrorOut", "TopErrorOut"):
        assert schemas[name]["properties"]["error_class"]["anyOf"] == [classes, {"type": "null"}], name
    by_class = schemas["ErrorClassCountOut"]["properties"]["error_class"]
    assert by_class["enum"] == ["transient", "configuration", "data", "system", "unknown"]
    assert schemas["EventOut"]["properties"]["event_type"]["$ref"] == "#/components/schemas/EventType"
    assert schemas["EventType"]["enum"] == [
        "queued", "started", "progress", "cancel_requested", "error", "retry", "completed", "cancelled"
    ]  # fmt: skip
    assert schemas["HealthComponentOut"]["properties"]["metric_type"]["$ref"] == "#/components/schemas/MetricType"
    assert schemas["MetricType"]["enum"] == ["database", "api", "resource", "job_queue"]


def test_an_error_recorded_without_its_class_has_none(as_viewer):
    # Not "" (which no generated client's enum has): null, as a job that never failed.
    job = JobFactory(failed=True, last_error={"type": "OSError", "message": "disk full"}, error_class="")

    body = as_viewer.get(f"{LIST}/{job.id}").json()

    assert (body["error_class"], body["error"]["error_class"], body["error"]["type"]) == (None, None, "OSError")


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "until", ["2026-11-28T02:30:00-23:12", "2026-11-29T02:30:00+15:59", "1988-11-13T20:26:40-23:12"]
)
def test_until_at_any_offset_python_takes_is_read_in_utc(as_viewer, until):
    """Postgres refuses offsets past ±15:59: a fuzzer's until=…-23:12 was a 500 (alerts and jobs lists).
    Each is before now (a later one counts as now, in UTC)."""
    JobFactory(failed=True, finished_at=datetime(2020, 1, 1, tzinfo=UTC))

    for url in (FINISHED, "/api/monitoring/alerts"):
        response = as_viewer.get(url, {"until": until})
        assert response.status_code == 200, (url, response.content)
