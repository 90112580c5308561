"""performance_metrics on a small known history, every number worked out by hand."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from jobs.models import JobStatus
from monitoring.apps import configure_session
from monitoring.metrics import (
    BUCKET_SECONDS,
    COUNT_KEYS,
    TIMEFRAMES,
    UnknownTimeframe,
    _attempt_counts,
    _counts_by_type_and_bucket,
    _errors_by_kind,
    _errors_in_one_pass,
    _outcome_counts,
    _time_stats_by,
    _timed_attempts,
    _top_errors,
    _window_in_one_pass,
    bucket_sql,
    execution_time_stats,
    performance_metrics,
)
from monitoring.models import EventType
from tests.factories import JobExecutionLogFactory, JobFactory, JobRetryHistoryFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def at(hh_mm_ss: str) -> datetime:
    h, m, s = map(int, hh_mm_ss.split(":"))
    return datetime(2026, 11, 29, h, m, s, tzinfo=UTC)


def attempt(job, number: int, started: str):
    JobRetryHistoryFactory(job=job, attempt_number=number, started_at=at(started))


def completed(job, when: str, ms: int):
    JobExecutionLogFactory(
        job=job, event_type=EventType.COMPLETED, status=JobStatus.COMPLETED, timestamp=at(when), execution_time_ms=ms
    )


def failed(job, when: str, ms: int, *, retried: bool, kind: str, error_class: str, fingerprint: str, message="boom"):
    JobExecutionLogFactory(
        job=job,
        event_type=EventType.ERROR,
        status=JobStatus.RETRYING if retried else JobStatus.FAILED,
        timestamp=at(when),
        execution_time_ms=ms,
        error_details={"type": kind, "message": message, "error_class": error_class, "fingerprint": fingerprint},
    )


@pytest.fixture
def history():
    """Between 02:00 and 03:00: ai_matching ran 4 jobs (one retried, one failed), demo.sleep 3."""
    j1, j2, j3, j4 = (JobFactory(job_type="ai_matching") for _ in range(4))
    attempt(j1, 1, "02:10:00")
    completed(j1, "02:10:30", 100)
    attempt(j2, 1, "02:20:00")
    failed(j2, "02:20:10", 50, retried=True, kind="httpx.ConnectTimeout", error_class="transient", fingerprint="aaa")
    attempt(j2, 2, "02:21:00")
    completed(j2, "02:21:40", 300)
    attempt(j3, 1, "02:30:00")
    failed(j3, "02:30:05", 20, retried=False, kind="ValueError", error_class="data", fingerprint="bbb")
    attempt(j4, 1, "02:39:00")
    completed(j4, "02:40:00", 200)  # on a bucket boundary: belongs to 02:40

    s1, s2, s3 = (JobFactory(job_type="demo.sleep") for _ in range(3))
    attempt(s1, 1, "02:50:00")
    completed(s1, "02:50:10", 1000)
    attempt(s2, 1, "02:55:00")
    cancelled = {"event_type": EventType.CANCELLED, "status": JobStatus.CANCELLED}
    JobExecutionLogFactory(job=s2, **cancelled, timestamp=at("02:55:30"), execution_time_ms=500)
    attempt(s3, 1, "02:55:50")
    timeout = {"kind": "httpx.ConnectTimeout", "error_class": "transient", "fingerprint": "aaa"}
    failed(s3, "02:56:00", 70, retried=False, **timeout, message="timed out after 5s")

    # Outside the window, or not an outcome: none of these count.
    old = JobFactory(job_type="ai_matching")
    attempt(old, 1, "01:59:00")
    completed(old, "01:59:59", 99_999)
    JobExecutionLogFactory(job=j1, event_type=EventType.PROGRESS, timestamp=at("02:10:10"), execution_time_ms=7_000)
    completed(j1, "03:00:00", 88_888)  # `until` is excluded
    return {"s3": s3}


def test_counts_rates_and_percentiles_per_job_type(history):
    metrics = performance_metrics("1h", now=NOW)

    ai, sleep = metrics["by_job_type"]
    assert ai == {
        "job_type": "ai_matching",
        "started": 5,
        "retried": 1,
        "succeeded": 3,
        "failed": 1,
        "failed_attempts": 2,
        "retried_failures": 1,
        "cancelled": 0,
        "success_rate": 0.75,
        "throughput_per_minute": 0.067,  # 4 finished / 60 min
        # 100, 200, 300: p95 at rank 1.9 = 200 + 0.9 * 100
        "mean_ms": 200.0,
        "p50_ms": 200.0,
        "p95_ms": 290.0,
        "p99_ms": 298.0,
    }
    assert sleep == {
        "job_type": "demo.sleep",
        "started": 3,
        "retried": 0,
        "succeeded": 1,
        "failed": 1,
        "failed_attempts": 1,
        "retried_failures": 0,
        "cancelled": 1,
        "success_rate": 0.5,
        "throughput_per_minute": 0.05,
        "mean_ms": 1000.0,
        "p50_ms": 1000.0,
        "p95_ms": 1000.0,
        "p99_ms": 1000.0,
    }


def test_a_failed_attempt_whose_retry_a_cancel_stopped_is_not_counted_as_retried():
    job = JobFactory(job_type="ai_matching")
    attempt(job, 1, "02:10:00")
    failed(job, "02:10:30", 50, retried=True, kind="httpx.ReadTimeout", error_class="transient", fingerprint="a")
    attempt(job, 2, "02:11:00")
    # The second attempt failed after a cancel was asked for: its error event says "cancelled" (jobs/manager.py).
    JobExecutionLogFactory(job=job, event_type=EventType.ERROR, status=JobStatus.CANCELLED, timestamp=at("02:11:30"))
    JobExecutionLogFactory(
        job=job, event_type=EventType.CANCELLED, status=JobStatus.CANCELLED, timestamp=at("02:11:30")
    )

    metrics = performance_metrics("1h", now=NOW)

    counts = ("failed_attempts", "retried_failures", "failed", "cancelled")
    assert tuple(metrics["overall"][key] for key in counts) == (2, 1, 0, 1)
    series = {point["bucket_start"]: point for point in metrics["series"]}
    assert (series[at("02:10:00")]["retried_failures"], series[at("02:11:00")]["retried_failures"]) == (1, 0)
    assert series[at("02:11:00")]["failed_attempts"] == 1


def test_overall_percentiles_come_from_all_attempts_not_from_the_job_types(history):
    overall = performance_metrics("1h", now=NOW)["overall"]
    # 100, 200, 300, 1000: p50 at rank 1.5 = 250; p95 at 2.85 = 300 + 0.85 * 700; p99 at 2.97
    assert overall == {
        "started": 8,
        "retried": 1,
        "succeeded": 4,
        "failed": 2,
        "failed_attempts": 3,
        "retried_failures": 1,
        "cancelled": 1,
        "success_rate": 0.6667,
        "throughput_per_minute": 0.117,
        "mean_ms": 400.0,
        "p50_ms": 250.0,
        "p95_ms": 895.0,
        "p99_ms": 979.0,
    }


def test_errors_by_class_by_type_and_grouped_by_fingerprint(history):
    metrics = performance_metrics("1h", now=NOW)

    assert metrics["errors_by_class"] == [
        {"error_class": "transient", "count": 2},
        {"error_class": "configuration", "count": 0},
        {"error_class": "data", "count": 1},
        {"error_class": "system", "count": 0},
    ]
    assert metrics["errors_by_type"] == [
        {"exception_type": "httpx.ConnectTimeout", "count": 2},
        {"exception_type": "ValueError", "count": 1},
    ]
    timeout, value_error = metrics["top_errors"]
    assert metrics["error_groups"] == 2
    assert timeout == {
        "fingerprint": "aaa",
        "count": 2,
        "first_seen": at("02:20:10"),
        "last_seen": at("02:56:00"),
        "job_types": ["ai_matching", "demo.sleep"],
        "example_job_id": history["s3"].id,  # the latest occurrence
        "exception_type": "httpx.ConnectTimeout",
        "message": "timed out after 5s",
        "error_class": "transient",
    }
    assert (value_error["fingerprint"], value_error["count"], value_error["job_types"]) == ("bbb", 1, ["ai_matching"])


def test_past_ten_error_groups_the_rarest_are_left_out_not_the_most_frequent():
    job = JobFactory(job_type="ai_matching")
    for n in range(1, 12):  # fingerprint f01 failed once, f02 twice, ... f11 eleven times
        for second in range(n):
            at_second = f"02:{n:02d}:{second:02d}"
            failed(job, at_second, 10, retried=True, kind="RuntimeError", error_class="system", fingerprint=f"f{n:02d}")

    metrics = performance_metrics("1h", now=NOW)

    top = metrics["top_errors"]
    assert [(group["fingerprint"], group["count"]) for group in top] == [(f"f{n:02d}", n) for n in range(11, 1, -1)]
    assert metrics["error_groups"] == 11  # the page says "the top 10 of 11 groups"


def test_one_error_only(history):
    """?error=<fingerprint>: the attempts that failed with it, nothing else (the timeouts: j2's
    retried attempt at 02:20:10, s3's last at 02:56:00)."""
    metrics = performance_metrics("1h", now=NOW, error="aaa")

    assert metrics["error"] == "aaa"
    assert metrics["overall"] == {
        "started": 0,  # an attempt's start does not know how it will end
        "retried": 0,
        "succeeded": 0,
        "failed": 1,
        "failed_attempts": 2,
        "retried_failures": 1,
        "cancelled": 0,
        "success_rate": None,  # one error's failures say nothing of the jobs' success
        "throughput_per_minute": round(1 / 60, 3),
        "mean_ms": None,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
    }
    assert [(row["job_type"], row["failed_attempts"], row["failed"]) for row in metrics["by_job_type"]] == [
        ("ai_matching", 1, 0),
        ("demo.sleep", 1, 1),
    ]
    failing = {
        point["bucket_start"]: point["failed_attempts"] for point in metrics["series"] if point["failed_attempts"]
    }
    assert failing == {at("02:20:00"): 1, at("02:56:00"): 1}
    assert sum(point["succeeded"] + point["started"] + point["cancelled"] for point in metrics["series"]) == 0
    assert metrics["errors_by_class"][0] == {"error_class": "transient", "count": 2}
    assert sum(row["count"] for row in metrics["errors_by_class"]) == 2
    assert metrics["errors_by_type"] == [{"exception_type": "httpx.ConnectTimeout", "count": 2}]
    assert metrics["error_groups"] == 1
    assert metrics["top_errors"] == [performance_metrics("1h", now=NOW)["top_errors"][0]]  # the same group row

    one_type = performance_metrics("1h", now=NOW, error="aaa", job_type="ai_matching")
    assert (one_type["overall"]["failed_attempts"], one_type["top_errors"][0]["job_types"]) == (1, ["ai_matching"])
    nothing = performance_metrics("1h", now=NOW, error="0123456789abcdef")
    assert (nothing["overall"]["failed_attempts"], nothing["top_errors"], nothing["error_groups"]) == (0, [], 0)


def thirty_more_failures():
    """30 more jobs of another type, each failed for good with the same data error ("ccc")."""
    for _ in range(30):
        job = JobFactory(job_type="more")
        attempt(job, 1, "02:45:00")
        failed(job, "02:45:01", 5, retried=False, kind="KeyError", error_class="data", fingerprint="ccc")


def test_one_error_in_no_more_queries_whatever_the_data(history, django_assert_max_num_queries):
    thirty_more_failures()
    # Postgres: as without it; SQLite: the attempts are not read.
    with django_assert_max_num_queries(2 if connection.vendor == "postgresql" else 8):
        metrics = performance_metrics("1h", now=NOW, error="ccc", execution_times=False, by_job_type=False)
    assert (metrics["overall"]["failed"], metrics["top_errors"][0]["count"]) == (30, 30)


def test_series_has_every_bucket_of_the_window(history):
    metrics = performance_metrics("1h", now=NOW)
    series = {point["bucket_start"]: point for point in metrics["series"]}

    assert metrics["bucket_seconds"] == 60
    assert len(metrics["series"]) == 60
    assert metrics["series"][0]["bucket_start"] == at("02:00:00")
    assert metrics["series"][-1]["bucket_start"] == at("02:59:00")
    assert series[at("02:10:00")] == {
        "bucket_start": at("02:10:00"),
        "started": 1,
        "succeeded": 1,
        "failed": 0,
        "failed_attempts": 0,
        "retried_failures": 0,
        "cancelled": 0,
        "p50_ms": 100.0,
        "p95_ms": 100.0,
    }
    assert (series[at("02:20:00")]["failed_attempts"], series[at("02:20:00")]["failed"]) == (1, 0)
    assert (series[at("02:39:00")]["started"], series[at("02:39:00")]["succeeded"]) == (1, 0)
    assert (series[at("02:40:00")]["succeeded"], series[at("02:40:00")]["p50_ms"]) == (1, 200.0)
    assert (series[at("02:55:00")]["started"], series[at("02:55:00")]["cancelled"]) == (2, 1)
    assert series[at("02:56:00")]["failed"] == 1
    assert series[at("02:01:00")] == {
        "bucket_start": at("02:01:00"),
        "started": 0,
        "succeeded": 0,
        "failed": 0,
        "failed_attempts": 0,
        "retried_failures": 0,
        "cancelled": 0,
        "p50_ms": None,
        "p95_ms": None,
    }
    assert sum(point["succeeded"] for point in metrics["series"]) == metrics["overall"]["succeeded"]


def test_one_job_type_only(history):
    metrics = performance_metrics("1h", job_type="demo.sleep", now=NOW)

    assert [row["job_type"] for row in metrics["by_job_type"]] == ["demo.sleep"]
    assert metrics["overall"] == {k: v for k, v in metrics["by_job_type"][0].items() if k != "job_type"}
    assert [(e["fingerprint"], e["count"], e["job_types"]) for e in metrics["top_errors"]] == [
        ("aaa", 1, ["demo.sleep"])
    ]


def test_bucket_size_follows_the_timeframe():
    midnight = datetime(2026, 11, 29, tzinfo=UTC)  # on every bucket boundary
    points = {name: len(performance_metrics(name, now=midnight)["series"]) for name in TIMEFRAMES}
    assert points == {"15m": 30, "1h": 60, "6h": 72, "24h": 96, "7d": 84, "30d": 120}


def test_an_unaligned_window_has_partial_buckets_at_both_ends():
    metrics = performance_metrics("1h", now=NOW + timedelta(seconds=30))
    assert metrics["series"][0]["bucket_start"] == at("02:00:00")
    assert metrics["series"][-1]["bucket_start"] == at("03:00:00")
    assert len(metrics["series"]) == 61


def test_no_data_gives_zeros_and_nones():
    metrics = performance_metrics("15m", now=NOW)
    assert metrics["by_job_type"] == [] and metrics["top_errors"] == [] and metrics["errors_by_type"] == []
    assert metrics["error_groups"] == 0
    assert metrics["overall"]["started"] == 0
    assert metrics["overall"]["success_rate"] is None and metrics["overall"]["p95_ms"] is None


def test_an_unknown_timeframe_names_the_accepted_ones():
    with pytest.raises(UnknownTimeframe, match="use one of 15m, 1h, 6h, 24h, 7d, 30d"):
        performance_metrics("2h", now=NOW)
    assert issubclass(UnknownTimeframe, ValueError)


def test_a_fixed_number_of_queries_whatever_the_data(history, django_assert_max_num_queries):
    thirty_more_failures()
    # Postgres: the window's counts and times in one statement, its errors in another.
    with django_assert_max_num_queries(2 if connection.vendor == "postgresql" else 9):
        metrics = performance_metrics("1h", now=NOW)
    assert metrics["overall"]["failed"] == 32


ERROR_KEYS = ("errors_by_class", "errors_by_type", "error_groups", "top_errors")
TIME_KEYS = ("mean_ms", "p50_ms", "p95_ms", "p99_ms")


def without(row: dict, keys) -> dict:
    return {key: value for key, value in row.items() if key not in keys}


def test_a_page_asks_only_for_the_parts_it_shows(history, django_assert_max_num_queries):
    full = performance_metrics("1h", now=NOW)
    postgres = connection.vendor == "postgresql"

    # The Performance page: no error analysis (one statement on Postgres, not two).
    with django_assert_max_num_queries(1 if postgres else 5):
        no_errors = performance_metrics("1h", now=NOW, errors=False)
    assert no_errors == without(full, ERROR_KEYS)

    # No execution times: the counts and errors are the same.
    with django_assert_max_num_queries(2 if postgres else 6):
        no_times = performance_metrics("1h", now=NOW, execution_times=False)
    assert no_times["overall"] == without(full["overall"], TIME_KEYS)
    assert no_times["by_job_type"] == [without(row, TIME_KEYS) for row in full["by_job_type"]]
    assert no_times["series"] == [without(point, TIME_KEYS) for point in full["series"]]
    assert without(no_times, ("overall", "by_job_type", "series")) == without(
        full, ("overall", "by_job_type", "series")
    )

    # The Errors page: neither execution times nor figures per job type (on Postgres its counts
    # are then read without joining jobs); the overall counts are the same.
    errors_page = performance_metrics("1h", now=NOW, execution_times=False, by_job_type=False)
    assert errors_page == without(no_times, ("by_job_type",))
    one_type = performance_metrics("1h", now=NOW, job_type="demo.sleep", execution_times=False, by_job_type=False)
    assert one_type["overall"] == without(full["by_job_type"][1], ("job_type", *TIME_KEYS))


@pytest.mark.parametrize("timeframe", ["1h", "24h", "7d", "30d"])
def test_postgres_one_pass_gives_what_the_query_per_figure_path_gives(postgres_only, timeframe):
    """The window statement (date_bin buckets, outcomes and attempts joined to jobs at once)
    against the per-figure queries SQLite runs (EXTRACT(EPOCH) buckets), on Postgres, over
    outcomes on and a microsecond before bucket boundaries of every timeframe."""
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    since = now - TIMEFRAMES[timeframe]
    size = BUCKET_SECONDS[timeframe]
    boundary = datetime.fromtimestamp((int(now.timestamp()) // size - 3) * size, UTC)
    times = [boundary, boundary - timedelta(microseconds=1), boundary + timedelta(microseconds=1), since]
    times += [now - TIMEFRAMES[timeframe] * i / 37 for i in range(1, 37)]
    for i, when in enumerate(times):
        job = JobFactory(job_type=("ai_matching", "demo.sleep", "imports")[i % 3])
        JobRetryHistoryFactory(job=job, attempt_number=1 + i % 2, started_at=when)
        kind, status = [
            (EventType.COMPLETED, JobStatus.COMPLETED),
            (EventType.ERROR, JobStatus.FAILED),
            (EventType.ERROR, JobStatus.RETRYING),
            (EventType.CANCELLED, JobStatus.CANCELLED),
        ][i % 4 if i % 5 else 0]
        JobExecutionLogFactory(job=job, event_type=kind, status=status, timestamp=when, execution_time_ms=17 * i + 3)

    per_type, per_bucket, times_by_type, times_overall, times_by_bucket = _window_in_one_pass(
        since, now, size, None, execution_times=True, by_job_type=True
    )
    unjoined = _window_in_one_pass(since, now, size, None, execution_times=True, by_job_type=False)

    expected_type, expected_bucket = _counts_by_type_and_bucket(
        _outcome_counts(since, now, size, None), _attempt_counts(since, now, size, None)
    )
    assert (dict(per_type), dict(per_bucket)) == (dict(expected_type), dict(expected_bucket))
    assert len(per_bucket) > 10
    # Without jobs joined: one group for all job types, the same buckets and times.
    assert dict(unjoined[0]) == {"": {key: sum(counts[key] for counts in per_type.values()) for key in COUNT_KEYS}}
    assert (dict(unjoined[1]), unjoined[3], unjoined[4]) == (dict(per_bucket), times_overall, times_by_bucket)
    assert times_by_type == execution_time_stats(since=since, until=now, by_job_type=True)
    assert times_overall == execution_time_stats(since=since, until=now)
    source, params = _timed_attempts(since, now)
    assert times_by_bucket == _time_stats_by(bucket_sql("postgresql", "l.timestamp", size), source, params)


@pytest.mark.parametrize("timeframe", ["1h", "30d"])
@pytest.mark.parametrize("job_type", [None, "imports"])
def test_postgres_one_pass_of_one_error_gives_what_the_query_per_figure_path_gives(postgres_only, timeframe, job_type):
    """With `error`: the window statement and the errors statement against the ORM queries SQLite
    runs, over three fingerprints (and errors without one) spread over the window."""
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    since = now - TIMEFRAMES[timeframe]
    size = BUCKET_SECONDS[timeframe]
    fingerprints = ["0123456789abcdef", "fedcba9876543210", "00000000000000aa", None]
    for i in range(48):
        when = now - TIMEFRAMES[timeframe] * (i + 0.5) / 47  # the last one before the window
        job = JobFactory(job_type=("ai_matching", "demo.sleep", "imports")[i % 3])
        JobRetryHistoryFactory(job=job, attempt_number=1, started_at=when)
        details = {"type": f"Error{i % 2}", "message": f"boom {i % 5}", "error_class": ("transient", "data")[i % 2]}
        if fingerprints[i % 4]:
            details["fingerprint"] = fingerprints[i % 4]
        kind, status = [(EventType.ERROR, JobStatus.FAILED), (EventType.ERROR, JobStatus.RETRYING)][i % 5 == 0]
        if i % 7 == 0:
            kind, status, details = EventType.COMPLETED, JobStatus.COMPLETED, {}
        JobExecutionLogFactory(job=job, event_type=kind, status=status, timestamp=when, error_details=details)

    for error in fingerprints[:2]:
        per_type, per_bucket, times_by_type, times_overall, _ = _window_in_one_pass(
            since, now, size, job_type, execution_times=True, by_job_type=True, error=error
        )
        expected_type, expected_bucket = _counts_by_type_and_bucket(
            _outcome_counts(since, now, size, job_type, error), []
        )
        assert (dict(per_type), dict(per_bucket)) == (dict(expected_type), dict(expected_bucket))
        assert sum(counts["failed_attempts"] for counts in per_type.values()) > 2
        assert sum(counts["started"] + counts["succeeded"] for counts in per_type.values()) == 0
        assert (times_by_type, times_overall["count"]) == ({}, 0)

        kinds, top, groups = _errors_in_one_pass(since, now, job_type, error)
        assert sorted(kinds) == sorted(_errors_by_kind(since, now, job_type, error))
        assert (top, groups) == _top_errors(since, now, job_type, error)
        assert [group["fingerprint"] for group in top] == [error] and groups == 1


def jit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        return cursor.fetchone()[0]


def test_no_statement_is_jit_compiled_on_postgres(postgres_only):
    """Compiling a day of metrics over millions of events took ~65 ms per request and made it
    no faster (docs/benchmark.md, finding 5): the application's connections turn JIT off."""
    assert jit() == "off"


def test_each_session_asks_the_server_for_its_own_keepalives(postgres_only):
    """A node cut off in a transaction must not hold its rows for the kernel's 2 hours
    (tests/reliability/test_node_cut_off.py); TCP here, where the server reads them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_user_timeout')")
        assert cursor.fetchone() == ("15", "30000")  # milliseconds


def test_behind_a_transaction_pooler_jit_is_left_to_the_role(postgres_only, settings):
    settings.DATABASE_POOLER = "transaction"  # a session SET would land on any server connection
    with connection.cursor() as cursor:
        cursor.execute("SET jit = on")

    configure_session(sender=None, connection=connection)

    assert jit() == "on"
    settings.DATABASE_POOLER = ""
    configure_session(sender=None, connection=connection)
    assert jit() == "off"
