from datetime import UTC, datetime, timedelta

import pytest

from monitoring.metrics import execution_time_stats
from monitoring.models import EventType
from tests.factories import JobExecutionLogFactory, JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def outcome(job, ms, *, minutes_ago=5, event_type=EventType.COMPLETED):
    JobExecutionLogFactory(
        job=job, event_type=event_type, status="completed", execution_time_ms=ms, timestamp=NOW - timedelta(minutes=minutes_ago)
    )


def test_percentiles_interpolate_like_percentile_cont():
    job = JobFactory(job_type="ai_matching")
    for ms in (50, 10, 40, 20, 30):
        outcome(job, ms)
    stats = execution_time_stats(since=NOW - timedelta(hours=1), until=NOW)
    # sorted 10..50: p50 at rank 2 = 30; p95 at rank 3.8 = 40 + 0.8*10; p99 at 3.96
    assert stats == {"count": 5, "mean_ms": 30.0, "p50_ms": 30.0, "p95_ms": 48.0, "p99_ms": 49.6}


def test_only_the_window_and_the_chosen_events_count():
    job = JobFactory()
    outcome(job, 100)
    outcome(job, 9_999, minutes_ago=120)  # before the window
    outcome(job, 5_000, event_type=EventType.ERROR)  # a failed attempt
    JobExecutionLogFactory(job=job, event_type=EventType.PROGRESS, execution_time_ms=7_000, timestamp=NOW)
    stats = execution_time_stats(since=NOW - timedelta(hours=1), until=NOW)
    assert (stats["count"], stats["p50_ms"]) == (1, 100.0)
    both = execution_time_stats(
        since=NOW - timedelta(hours=1), until=NOW, event_types=(EventType.COMPLETED, EventType.ERROR)
    )
    assert (both["count"], both["p50_ms"]) == (2, 2550.0)


def test_per_job_type_and_for_one_job_type():
    fast, slow = JobFactory(job_type="fast"), JobFactory(job_type="slow")
    for ms in (1, 2, 3):
        outcome(fast, ms)
    for ms in (1000, 3000):
        outcome(slow, ms)
    window = {"since": NOW - timedelta(hours=1), "until": NOW}
    by_type = execution_time_stats(**window, by_job_type=True)
    assert by_type["fast"]["p50_ms"] == 2.0 and by_type["fast"]["count"] == 3
    assert by_type["slow"]["p50_ms"] == 2000.0 and by_type["slow"]["p99_ms"] == 2980.0
    assert execution_time_stats(**window, job_type="slow")["mean_ms"] == 2000.0


def test_no_data_gives_empty_stats_not_errors():
    stats = execution_time_stats(since=NOW - timedelta(hours=1), until=NOW)
    assert stats == {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None}
    assert execution_time_stats(since=NOW - timedelta(hours=1), until=NOW, by_job_type=True) == {}
