"""The four tables are the design's, column for column; an existing database with them is adoptable."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

DESIGN_SQL = (Path(__file__).parent / "design_schema.sql").read_text()
DESIGN_TABLES = ("job_execution_logs", "system_health_metrics", "alert_history", "job_retry_history")

COLUMNS_SQL = """
    SELECT table_name, ordinal_position, column_name, data_type, udt_name, character_maximum_length,
           numeric_precision, numeric_scale, is_nullable, column_default
    FROM information_schema.columns
    WHERE table_schema = %s AND table_name = ANY(%s)
    ORDER BY table_name, ordinal_position
"""


def columns(cursor, schema: str) -> list[tuple]:
    cursor.execute(COLUMNS_SQL, [schema, list(DESIGN_TABLES)])
    return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_migrated_tables_match_the_design_ddl_column_for_column(postgres_only):
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS design CASCADE; CREATE SCHEMA design")
        try:
            cursor.execute("SET search_path TO design")
            cursor.execute(DESIGN_SQL)
            cursor.execute("SET search_path TO public")
            expected, actual = columns(cursor, "design"), columns(cursor, "public")
        finally:
            cursor.execute("SET search_path TO public; DROP SCHEMA design CASCADE")
    assert len(expected) == 41
    # Name, position, type, length, precision, nullability and default of every column.
    assert actual == expected


@pytest.fixture
def design_database(postgres_only):
    """A fresh database holding only the design's tables, as on an existing Supabase project."""
    name = f"adopt_{uuid.uuid4().hex[:8]}"
    db = settings.DATABASES["default"]
    params = {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"], "password": db["PASSWORD"]}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(dbname=name, autocommit=True, **params) as conn:
            conn.execute(DESIGN_SQL)
            conn.execute("INSERT INTO jobs (id) VALUES (gen_random_uuid())")  # a row the platform had
        url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{params['port']}/{name}"
        yield url, params | {"dbname": name}
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_an_existing_database_with_the_design_tables_is_adopted_with_fake_initial(design_database):
    url, conninfo = design_database

    migrate = manage(url, "migrate", "--fake-initial", "--noinput")
    assert migrate.returncode == 0, migrate.stderr
    assert "Applying jobs.0001_initial... FAKED" in migrate.stdout
    assert "Applying monitoring.0001_initial... FAKED" in migrate.stdout
    assert "Applying alerts.0001_initial... FAKED" in migrate.stdout

    # The database now matches the models, and a job runs end to end on it.
    check = manage(url, "makemigrations", "--check", "--dry-run")
    assert check.returncode == 0, check.stdout + check.stderr
    run = manage(
        url,
        "shell",
        "-c",
        "from jobs.manager import job_manager; j = job_manager.submit_job('demo.fail', {'fail_times': 0}); "
        "job_manager.execute_job_sync(j.id, 1); j.refresh_from_db(); print(j.status)",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("completed")
    with psycopg.connect(**conninfo) as conn:
        events = conn.execute("SELECT event_type FROM job_execution_logs ORDER BY timestamp").fetchall()
        assert [e for (e,) in events] == ["queued", "started", "progress", "completed"]
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (2,)  # the platform's row kept
