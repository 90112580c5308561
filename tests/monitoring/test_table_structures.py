"""validate_table_structures on a test database altered the way a careless migration would.

Each test alters tables inside its own transaction, which is rolled back afterwards.
"""

import pytest
from django.db import connection

from monitoring.health import health_service
from monitoring.models import SystemHealthMetric

pytestmark = pytest.mark.django_db


def execute(sql: str):
    with connection.cursor() as cursor:
        cursor.execute(sql)


def schema() -> dict:
    (component,) = health_service.validate_table_structures_sync()["components"]
    return component


def test_the_migrated_schema_matches():
    component = schema()
    assert (component["metric_type"], component["metric_name"]) == ("database", "database.schema")
    assert (component["status"], component["metric_value"]) == ("healthy", 0)
    assert component["details"]["tables"] == [
        "jobs",
        "job_execution_logs",
        "system_health_metrics",
        "alert_history",
        "job_retry_history",
    ]


def test_a_dropped_column_is_critical_and_named():
    execute("ALTER TABLE job_execution_logs DROP COLUMN memory_usage_mb")
    component = schema()
    assert (component["status"], component["metric_value"]) == ("critical", 1)
    assert component["details"]["problems"] == ["job_execution_logs.memory_usage_mb is missing (expected integer)"]
    assert "job_execution_logs.memory_usage_mb is missing" in component["details"]["message"]


def test_a_missing_table_is_critical_and_named():
    execute("ALTER TABLE alert_history RENAME TO alert_history_old")
    assert schema()["details"]["problems"] == ["table alert_history is missing"]


def test_a_wrong_type_is_critical_and_named(postgres_only):
    execute("ALTER TABLE job_retry_history ALTER COLUMN attempt_number TYPE bigint")
    execute("ALTER TABLE jobs ALTER COLUMN job_type TYPE varchar(20)")
    assert schema()["details"]["problems"] == [
        "jobs.job_type is varchar(20), expected varchar(100)",
        "job_retry_history.attempt_number is bigint, expected integer",
    ]


def test_a_column_made_not_null_is_critical_and_named(postgres_only):
    execute("ALTER TABLE job_execution_logs ALTER COLUMN message SET NOT NULL")
    assert schema()["details"]["problems"] == ["job_execution_logs.message is NOT NULL, expected nullable"]


def test_a_dropped_column_makes_the_whole_run_critical():
    execute("ALTER TABLE jobs DROP COLUMN submitted_by")
    result = health_service.run_health_checks_sync()
    assert result["status"] == "critical"
    stored = SystemHealthMetric.objects.get(metric_name="database.schema")
    assert stored.status == "critical"
    assert stored.details["problems"] == ["jobs.submitted_by is missing (expected varchar(150))"]
