"""The live database's tables compared with what the code expects of them.

The expectation is the models (which are the design's DDL, column for column): each
column's type as Django would create it on this database, and whether it may be NULL.
The live side comes from information_schema on Postgres and the introspection API
elsewhere, normalised to the same spelling.
"""

from django.db import connection

from alerts.models import AlertHistory
from jobs.models import Job, JobRetryHistory
from monitoring.models import JobExecutionLog, SystemHealthMetric

CHECKED_MODELS = (Job, JobExecutionLog, SystemHealthMetric, AlertHistory, JobRetryHistory)


def expected_columns(model) -> dict[str, tuple[str, bool]]:
    """{column: (type, nullable)} as the model declares it on this database."""
    columns = {}
    for field in model._meta.local_concrete_fields:
        columns[field.column] = (_normalize(field.db_type(connection)), field.null and not field.primary_key)
    return columns


def live_columns(tables: list[str]) -> dict[str, dict[str, tuple[str, bool]]]:
    """{table: {column: (type, nullable)}} for those of `tables` that exist."""
    if connection.vendor == "postgresql":
        return _postgres_columns(tables)
    return _introspected_columns(tables)


def schema_problems() -> tuple[list[str], list[str]]:
    """(problems, tables checked): each problem names the table and column it is about."""
    tables = [model._meta.db_table for model in CHECKED_MODELS]
    live = live_columns(tables)
    problems = []
    for model in CHECKED_MODELS:
        table = model._meta.db_table
        if table not in live:
            problems.append(f"table {table} is missing")
            continue
        for column, (expected_type, expected_null) in expected_columns(model).items():
            if column not in live[table]:
                problems.append(f"{table}.{column} is missing (expected {expected_type})")
                continue
            live_type, live_null = live[table][column]
            if live_type != expected_type:
                problems.append(f"{table}.{column} is {live_type}, expected {expected_type}")
            elif live_null != expected_null:
                expected = "nullable" if expected_null else "NOT NULL"
                problems.append(f"{table}.{column} is {'nullable' if live_null else 'NOT NULL'}, expected {expected}")
    return problems, tables


def _normalize(db_type: str | None) -> str:
    return " ".join((db_type or "").lower().replace(", ", ",").split())


# information_schema's data_type, spelled the way Django's db_type() spells it.
_PG_TYPES = {
    "character varying": "varchar",
    "character": "char",
    "timestamp with time zone": "timestamp with time zone",
    "timestamp without time zone": "timestamp",
}


def _postgres_columns(tables: list[str]) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name, data_type, character_maximum_length,
                   numeric_precision, numeric_scale, udt_name, is_nullable
            FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = ANY(%s)
            """,
            [tables],
        )
        rows = cursor.fetchall()
    live: dict[str, dict] = {}
    for table, column, data_type, length, precision, scale, udt_name, nullable in rows:
        type_name = _PG_TYPES.get(data_type, data_type)
        if data_type in ("character varying", "character") and length:
            type_name = f"{type_name}({length})"
        elif data_type == "numeric" and precision is not None:
            type_name = f"numeric({precision},{scale})"
        elif data_type == "ARRAY":
            type_name = _PG_TYPES.get(udt_name[1:], udt_name[1:]) + "[]"
        live.setdefault(table, {})[column] = (_normalize(type_name), nullable == "YES")
    return live


def _introspected_columns(tables: list[str]) -> dict:
    introspection = connection.introspection
    live = {}
    with connection.cursor() as cursor:
        existing = set(introspection.table_names(cursor))
        for table in tables:
            if table in existing:
                live[table] = {
                    info.name: (_normalize(info.type_code), bool(info.null_ok) and not info.pk)
                    for info in introspection.get_table_description(cursor, table)
                }
    return live
