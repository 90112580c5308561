"""Retention: old monitoring rows go, in batches; the rest stays."""

import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import Schedule

from jobs.models import IdempotencyKey, Job, JobStatus
from jobs.schedules import sync_schedules
from monitoring import tasks
from monitoring.models import JobExecutionLog, SystemHealthMetric
from monitoring.retention import prune_monitoring
from tests.factories import (
    AlertHistoryFactory,
    IdempotencyKeyFactory,
    JobExecutionLogFactory,
    JobFactory,
    SystemHealthMetricFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def retention(settings):
    settings.RETENTION_DAYS = {"job_execution_logs": 30, "system_health_metrics": 7}
    return settings.RETENTION_DAYS


def logs(count: int, *, days_ago: float, job=None):
    """`count` events of a job that finished then (a new one unless given)."""
    job = job or JobFactory(completed=True, finished_at=NOW - timedelta(days=days_ago))
    for _ in range(count):
        JobExecutionLogFactory(job=job, timestamp=NOW - timedelta(days=days_ago))
    return job


def health_rows(count: int, *, days_ago: float):
    for _ in range(count):
        SystemHealthMetricFactory(timestamp=NOW - timedelta(days=days_ago))


def test_rows_older_than_each_table_s_retention_are_deleted(retention):
    logs(3, days_ago=31)
    logs(2, days_ago=29)
    health_rows(4, days_ago=8)
    health_rows(1, days_ago=6)

    assert prune_monitoring(now=NOW) == {
        "job_execution_logs": 3,
        "system_health_metrics": 4,
        "job_idempotency_keys": 0,
    }
    assert JobExecutionLog.objects.count() == 2
    assert SystemHealthMetric.objects.count() == 1
    assert Job.objects.count() == 2  # jobs themselves are kept


def test_deletes_go_in_batches_of_the_oldest_rows(retention):
    logs(5, days_ago=40)
    logs(1, days_ago=1)
    with CaptureQueriesContext(connection) as queries:
        assert prune_monitoring(now=NOW, batch_size=2)["job_execution_logs"] == 5

    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "job_execution_logs"')]
    assert len(deletes) == 4  # 2 + 2 + 1, and one that finds nothing left
    assert all("LIMIT 2" in sql and re.search(r'ORDER BY \w+\."timestamp" ASC', sql) for sql in deletes)
    assert JobExecutionLog.objects.count() == 1


def test_an_active_jobs_events_are_kept_however_old(retention):
    """Drill: a job queued for 17 days (its type paused), one retrying for 18 and one running for 20
    were left with no event, or with only their last, by a 15-day retention."""
    queued = logs(2, days_ago=40, job=JobFactory(status=JobStatus.QUEUED))
    retrying = logs(2, days_ago=40, job=JobFactory(status=JobStatus.RETRYING))
    running = logs(3, days_ago=40, job=JobFactory(running=True))

    assert prune_monitoring(now=NOW)["job_execution_logs"] == 0
    assert [JobExecutionLog.objects.filter(job=job).count() for job in (queued, retrying, running)] == [2, 2, 3]


def test_a_jobs_events_go_together_once_it_finished_before_the_cutoff(retention):
    """Drill: a job whose events spanned the cutoff kept only its later ones, a timeline starting
    half-way with nothing to say so."""
    spanning = logs(2, days_ago=35)
    logs(1, days_ago=10, job=spanning)
    Job.objects.filter(id=spanning.id).update(finished_at=NOW - timedelta(days=10))
    done = logs(2, days_ago=35)

    assert prune_monitoring(now=NOW)["job_execution_logs"] == 2
    assert JobExecutionLog.objects.filter(job=spanning).count() == 3
    assert not JobExecutionLog.objects.filter(job=done).exists()


def test_the_events_of_jobs_an_open_alert_points_to_are_kept_until_it_is_resolved(retention):
    """Drill: all 51 jobs behind open alerts lost their events, their tracebacks with them, while
    the incidents were still open."""
    from alerts.models import AlertOccurrence
    from alerts.services import alert_resolve

    alerted = logs(2, days_ago=40)
    counted = logs(2, days_ago=40)
    alert = AlertHistoryFactory(job=alerted)
    AlertOccurrence.objects.create(alert=alert, job=counted)
    logs(2, days_ago=40)  # no alert

    assert prune_monitoring(now=NOW)["job_execution_logs"] == 2
    alert_resolve(alert=alert)
    assert prune_monitoring(now=NOW)["job_execution_logs"] == 4
    assert not JobExecutionLog.objects.exists()


def test_a_prune_cut_short_by_another_goes_on_until_nothing_is_due(retention, monkeypatch):
    """Drill: of three prunes at once, two stopped at their first short batch (another had deleted
    some of its rows) and said "deleted 0" with a million rows due."""
    from django.db.models import QuerySet

    logs(5, days_ago=40)
    real_delete, calls = QuerySet.delete, []

    def another_node_took_one_row_of_the_first_batch(queryset):
        calls.append(1)
        deleted, per_model = real_delete(queryset)
        return (deleted - 1 if len(calls) == 1 else deleted), per_model

    monkeypatch.setattr(QuerySet, "delete", another_node_took_one_row_of_the_first_batch)

    prune_monitoring(now=NOW, batch_size=2)

    assert not JobExecutionLog.objects.exists()


@pytest.mark.django_db(transaction=True)  # the other prune's connection must see the rows
def test_a_prune_skips_the_rows_another_prune_holds_instead_of_waiting_on_them(retention, postgres_only):
    """Drill: of two prunes at once on 870k due rows, one died after 17 s, "deadlock detected while
    deleting tuple in relation system_health_metrics": each waited on rows the other had locked."""
    import threading

    from django.db import connections, transaction

    held = logs(2, days_ago=40)
    free = logs(3, days_ago=45)  # older: the first batch would wait on none of its rows
    locked, release = threading.Event(), threading.Event()

    def another_prune_mid_batch():
        try:
            with transaction.atomic():
                list(JobExecutionLog.objects.select_for_update().filter(job=held))
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    other = threading.Thread(target=another_prune_mid_batch)
    other.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # waiting on the held rows fails, not hangs
        deleted = prune_monitoring(now=NOW, batch_size=2)["job_execution_logs"]
    finally:
        release.set()
        other.join(10)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert deleted == 3
    assert not JobExecutionLog.objects.filter(job=free).exists()
    assert JobExecutionLog.objects.filter(job=held).count() == 2  # the other prune's to delete


def test_zero_days_keeps_a_table_whole(retention):
    retention["system_health_metrics"] = 0
    health_rows(3, days_ago=400)
    assert prune_monitoring(now=NOW)["system_health_metrics"] == 0
    assert SystemHealthMetric.objects.count() == 3


def test_a_dry_run_only_counts(retention):
    logs(3, days_ago=31)
    assert prune_monitoring(now=NOW, dry_run=True)["job_execution_logs"] == 3
    assert JobExecutionLog.objects.count() == 3


def test_the_command_says_what_it_deleted(retention):
    logs(2, days_ago=31)
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("prune_monitoring", "--batch-size", "1", stdout=out)
    assert out.getvalue().splitlines() == [
        "job_execution_logs: deleted 2 rows older than 2026-10-30 03:00 UTC",
        "system_health_metrics: deleted 0 rows older than 2026-11-22 03:00 UTC",
        "job_idempotency_keys: deleted 0 rows older than 2026-11-28 03:00 UTC",
    ]
    assert JobExecutionLog.objects.count() == 0


def test_the_command_refuses_a_batch_size_below_one():
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("prune_monitoring", "--batch-size", "0")


def test_the_periodic_tasks_are_scheduled_and_call_the_services(retention, settings):
    settings.PERIODIC_TASKS = {
        "run_health_checks": {"func": "monitoring.tasks.run_health_checks", "minutes": 1},
        "prune_monitoring": {"func": "monitoring.tasks.prune_monitoring", "minutes": 60},
    }
    sync_schedules()
    scheduled = dict(Schedule.objects.filter(name__startswith="jobmonitor:").values_list("func", "minutes"))
    assert scheduled == {"monitoring.tasks.run_health_checks": 1, "monitoring.tasks.prune_monitoring": 60}

    logs(1, days_ago=365)
    assert tasks.prune_monitoring()["job_execution_logs"] == 1
    assert tasks.run_health_checks() in ("healthy", "warning", "critical")
    assert SystemHealthMetric.objects.exists()


def test_the_settings_schedule_both_tasks_by_default():
    from django.conf import settings

    assert settings.PERIODIC_TASKS["run_health_checks"]["func"] == "monitoring.tasks.run_health_checks"
    assert settings.PERIODIC_TASKS["prune_monitoring"]["func"] == "monitoring.tasks.prune_monitoring"


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("RETENTION_DAYS", {"job_execution_logs": -1, "system_health_metrics": 30}, "must be from 0"),
        ("RETENTION_DAYS", {"job_execution_logs": 45, "system_health_metrics": 100_000_000}, "to 36500 days"),
        ("RETENTION_BATCH_SIZE", 0, "RETENTION_BATCH_SIZE must be at least 1, not 0"),
    ],
)
def test_a_retention_setting_out_of_range_stops_every_command_at_start(settings, setting, value, message):
    from django.core.management.base import SystemCheckError

    setattr(settings, setting, value)
    with pytest.raises(SystemCheckError, match=message):
        call_command("check")


def test_a_log_retention_shorter_than_the_longest_timeframe_is_warned_of(settings):
    from monitoring.checks import retention_settings

    settings.RETENTION_DAYS = {"job_execution_logs": 15, "system_health_metrics": 30}
    (warning,) = retention_settings(None)
    assert warning.id == "monitoring.W001" and "only the last 15 days of outcomes" in warning.msg
    settings.RETENTION_DAYS = {"job_execution_logs": 45, "system_health_metrics": 30}
    assert retention_settings(None) == []


def test_idempotency_keys_go_24_hours_after_their_submit_oldest_first_in_batches(retention):
    """A key is answered for 24 hours (jobs.idempotency); past them it only takes room. Their jobs stay."""
    expired = [IdempotencyKeyFactory(created_at=NOW - timedelta(hours=hours)) for hours in (50, 30, 25)]
    live = IdempotencyKeyFactory(created_at=NOW - timedelta(hours=23, minutes=59))
    with CaptureQueriesContext(connection) as queries:
        assert prune_monitoring(now=NOW, batch_size=2)["job_idempotency_keys"] == 3

    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "job_idempotency_keys"')]
    assert len(deletes) == 3  # 2 + 1, and one that finds nothing left
    assert all("LIMIT 2" in sql and re.search(r'ORDER BY \w+\."created_at" ASC', sql) for sql in deletes)
    assert list(IdempotencyKey.objects.all()) == [live]
    assert Job.objects.filter(id__in=[key.job_id for key in expired]).count() == 3
