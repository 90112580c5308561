"""Row-level security (monitoring/rls.py): a role other than the owner, like Supabase's `anon` and
`authenticated`, granted SELECT and INSERT on every table, reads and writes nothing. On local
PostgreSQL; SQLite has no roles."""

import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import sql

from jobs.manager import job_manager
from monitoring.rls import enable_row_level_security
from tests.factories import AlertHistoryFactory, SystemHealthMetricFactory, UserFactory

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]


@pytest.fixture
def postgres_only(db):
    if connection.vendor != "postgresql":
        pytest.skip(
            "row-level security and roles are PostgreSQL's (what Supabase exposes); SQLite has neither: "
            "set DATABASE_URL=postgres://… to run it"
        )


def tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1"
        )
        return [name for (name,) in cursor.fetchall()]


def row_counts(conn) -> dict[str, int]:
    return {
        table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
        for table in tables()
    }


def run(statement, *identifiers):
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL(statement).format(*map(sql.Identifier, identifiers)).as_string(connection.connection))


@pytest.fixture
def outsider(postgres_only, transactional_db):
    """A connection as a new role that may log in and was granted SELECT and INSERT on every table."""
    role, database = f"jm_outsider_{uuid.uuid4().hex[:8]}", connection.settings_dict["NAME"]
    run("CREATE ROLE {} LOGIN", role)
    try:
        run("GRANT CONNECT ON DATABASE {} TO {}", database, role)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            schema = cursor.fetchone()[0]
        run("GRANT USAGE ON SCHEMA {} TO {}", schema, role)
        run("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {} TO {}", schema, role)
        db = connection.settings_dict
        with psycopg.connect(
            host=db["HOST"] or "localhost", port=db["PORT"] or 5432, user=role, dbname=database, autocommit=True
        ) as conn:
            yield conn
    finally:
        run("DROP OWNED BY {}", role)  # its grants, here and on the database
        run("DROP ROLE {}", role)


@pytest.fixture
def rows(transactional_db):
    """Something in the tables people would want to read."""
    alice = UserFactory(username="alice")
    job = job_manager.submit_job("reliability.quick", {"candidate": "Ada Lovelace"}, submitted_by="alice")
    job_manager.execute_job_sync(job.id, 1)
    AlertHistoryFactory(job=job)
    SystemHealthMetricFactory()
    return alice


def test_every_table_has_row_level_security(postgres_only, transactional_db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity"
        )
        assert cursor.fetchall() == []
    assert {"jobs", "job_execution_logs", "alert_history", "django_cache", "django_q_ormq"} <= set(tables())


def test_a_role_other_than_the_owner_reads_and_writes_nothing(outsider, rows, figures):
    as_owner = row_counts(connection.connection)
    assert all(as_owner[table] > 0 for table in ("jobs", "job_execution_logs", "job_retry_history", "auth_user"))

    assert row_counts(outsider) == dict.fromkeys(as_owner, 0)
    figures(f"{len(as_owner)} tables, {sum(as_owner.values())} rows: a non-owner role granted SELECT reads 0")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        outsider.execute("INSERT INTO system_health_metrics (id, timestamp, metric_type, metric_name, metric_value,"
                         " status) VALUES (gen_random_uuid(), now(), 'api', 'probe', 1, 'healthy')")


def test_a_table_without_it_gets_it_at_the_next_migrate(outsider, rows):
    run("ALTER TABLE {} DISABLE ROW LEVEL SECURITY", "jobs")
    run("CREATE TABLE {} (secret text)", "reliability_added_later")
    run("INSERT INTO {} VALUES ('hunter2')", "reliability_added_later")
    run("GRANT SELECT ON {} TO {}", "reliability_added_later", outsider.info.user)
    try:
        assert row_counts(outsider)["jobs"] == 1  # without RLS the grant is all it takes
        assert row_counts(outsider)["reliability_added_later"] == 1

        call_command("migrate", verbosity=0)

        assert row_counts(outsider)["jobs"] == 0
        assert row_counts(outsider)["reliability_added_later"] == 0
        assert enable_row_level_security() == []  # and again changes nothing
    finally:
        run("DROP TABLE {}", "reliability_added_later")
