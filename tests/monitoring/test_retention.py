"""Retention: old monitoring rows go, in batches; the rest stays."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import Schedule

from jobs.models import Job
from jobs.schedules import sync_schedules
from monitoring import tasks
from monitoring.models import JobExecutionLog, SystemHealthMetric
from monitoring.retention import prune_monitoring
from tests.factories import JobExecutionLogFactory, JobFactory, SystemHealthMetricFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def retention(settings):
    settings.RETENTION_DAYS = {"job_execution_logs": 30, "system_health_metrics": 7}
    return settings.RETENTION_DAYS


def logs(count: int, *, days_ago: float):
    job = JobFactory()
    for _ in range(count):
        JobExecutionLogFactory(job=job, timestamp=NOW - timedelta(days=days_ago))


def health_rows(count: int, *, days_ago: float):
    for _ in range(count):
        SystemHealthMetricFactory(timestamp=NOW - timedelta(days=days_ago))


def test_rows_older_than_each_table_s_retention_are_deleted(retention):
    logs(3, days_ago=31)
    logs(2, days_ago=29)
    health_rows(4, days_ago=8)
    health_rows(1, days_ago=6)

    assert prune_monitoring(now=NOW) == {"job_execution_logs": 3, "system_health_metrics": 4}
    assert JobExecutionLog.objects.count() == 2
    assert SystemHealthMetric.objects.count() == 1
    assert Job.objects.count() == 2  # jobs themselves are kept


def test_deletes_go_in_batches_of_the_oldest_rows(retention):
    logs(5, days_ago=40)
    logs(1, days_ago=1)
    with CaptureQueriesContext(connection) as queries:
        assert prune_monitoring(now=NOW, batch_size=2)["job_execution_logs"] == 5

    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "job_execution_logs"')]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert all("LIMIT 2" in sql and 'ORDER BY U0."timestamp" ASC' in sql for sql in deletes)
    assert JobExecutionLog.objects.count() == 1


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
