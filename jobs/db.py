"""Database helpers shared by the apps' models."""

from django.db import models


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
        return "CURRENT_TIMESTAMP", []
