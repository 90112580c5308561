"""Database helpers shared by the apps' models."""

from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import models
from django.db.migrations.operations import AddIndex


class GenRandomUUID(models.Func):
    """`gen_random_uuid()`, the design's column default for UUID keys.

    Python code always sets ids itself (uuid4); the database default serves rows that
    other clients insert, as on an adopted Supabase database.
    """

    function = "gen_random_uuid"
    template = "%(function)s()"
    output_field = models.UUIDField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores UUIDs on SQLite as 32 hex digits.
        return "lower(hex(randomblob(16)))", []


class DbNow(models.Func):
    """`now()`, the design's default for timestamps (Django's Now() is statement_timestamp())."""

    template = "now()"
    output_field = models.DateTimeField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # CURRENT_TIMESTAMP has whole seconds only: too coarse for heartbeats. Written exactly
        # as Django writes a datetime (str(): six digits, none when zero), so that a value read
        # back compares equal when used in a filter (the sweep's compare-and-set).
        return "REPLACE(STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'now') || '000', '.000000', '')", []


def heartbeats_stale_before(now=None):
    """The heartbeat time before which a running attempt counts as abandoned by its worker.

    Heartbeats are written with the database's clock (DbNow), and judged by it: a node whose
    clock runs ahead cannot take live jobs of other nodes back. `now` (a frozen moment in
    tests) replaces the database's clock.
    """
    stale_after = timedelta(seconds=settings.JOBS["STALE_AFTER"])
    if now is not None:
        return now - stale_after
    return models.ExpressionWrapper(DbNow() - stale_after, output_field=models.DateTimeField())


class AddIndexOnline(AddIndexConcurrently):
    """AddIndex for a table the workers keep writing: CREATE INDEX CONCURRENTLY on Postgres, so
    that submits, claims and events do not wait for the build (a plain CREATE INDEX holds a SHARE
    lock on the table until it is done); a plain CREATE INDEX elsewhere (SQLite, the embedded
    default, has no such writers). Its migration must say `atomic = False`."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
