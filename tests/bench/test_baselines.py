"""The raw SQL of the metrics figure computes exactly what performance_metrics() returns, on the
benchmark's own generated history (which is checked for consistency too)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from bench import baselines, data
from jobs.models import Job, JobRetryHistory, JobStatus
from monitoring.metrics import BUCKET_SECONDS, TIMEFRAMES, performance_metrics
from monitoring.models import TERMINAL_EVENT_TYPES, JobExecutionLog

JOBS = 3000  # about 100 jobs a day over 30 days: a few in the last hour, a hundred in the last day


@pytest.fixture
def history(postgres_only):
    now = timezone.now().replace(microsecond=0)
    with connection.cursor() as cursor:
        layer = data.generate_layer(cursor, tag="test", jobs=JOBS, until=now, seed=7)
    return now, layer


def test_every_generated_job_is_consistent(history):
    now, layer = history
    assert Job.objects.count() == JOBS == layer.jobs
    assert JobExecutionLog.objects.count() == layer.events
    assert JobRetryHistory.objects.count() == layer.attempts
    assert layer.events / layer.jobs == pytest.approx(data.rows_per_job(), rel=0.05)
    # One terminal event per attempt, one attempt row per attempt, nothing after `now`.
    mismatched = Job.objects.annotate(
        outcomes=Count("logs", filter=Q(logs__event_type__in=TERMINAL_EVENT_TYPES), distinct=True),
        attempt_rows=Count("attempt_history", distinct=True),
    ).exclude(outcomes=F("attempts"), attempt_rows=F("attempts"))
    assert not mismatched.exists()
    assert not JobExecutionLog.objects.filter(timestamp__gte=now).exists()
    assert set(Job.objects.values_list("status", flat=True)) == {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }


def test_the_same_seed_gives_the_same_rows(history):
    now, _ = history
    first = sorted(JobExecutionLog.objects.values_list("id", "event_type", "execution_time_ms"))
    JobExecutionLog.objects.all().delete()
    JobRetryHistory.objects.all().delete()
    Job.objects.all().delete()
    with connection.cursor() as cursor:
        data.generate_layer(cursor, tag="test", jobs=JOBS, until=now, seed=7)
    assert sorted(JobExecutionLog.objects.values_list("id", "event_type", "execution_time_ms")) == first


@pytest.mark.parametrize("timeframe", ["1h", "24h", "7d"])
def test_the_raw_sql_computes_the_metrics_numbers(history, timeframe):
    now, _ = history
    params = {"since": now - TIMEFRAMES[timeframe], "until": now, "size": BUCKET_SECONDS[timeframe]}
    with connection.cursor() as cursor:
        cursor.execute(baselines.METRICS_SQL, params)
        raw = baselines.summarize_raw(cursor.fetchone())
    ours = baselines.summarize_metrics(performance_metrics(timeframe, now=now))
    assert raw == ours
    assert raw["overall"]["succeeded"] > 0
    if timeframe != "1h":  # about four jobs an hour: errors only show in the longer windows
        assert raw["top_errors"] and raw["errors_by_class"] and raw["series"]


def test_an_empty_window_agrees_too(history):
    now, _ = history
    later = now + timedelta(days=2)
    params = {"since": later - TIMEFRAMES["1h"], "until": later, "size": BUCKET_SECONDS["1h"]}
    with connection.cursor() as cursor:
        cursor.execute(baselines.METRICS_SQL, params)
        raw = baselines.summarize_raw(cursor.fetchone())
    assert raw == baselines.summarize_metrics(performance_metrics("1h", now=later))
    assert raw["overall"]["succeeded"] == 0


def test_the_job_list_baselines_fetch_the_columns_the_lists_read():
    """A baseline page reading fewer columns than the endpoint would flatter the baseline."""
    from monitoring.selectors import JOB_SUMMARY_FIELDS

    assert baselines.JOB_COLUMNS.split(", ") == list(JOB_SUMMARY_FIELDS)
