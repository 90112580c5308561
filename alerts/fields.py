import json

from django.contrib.postgres.fields import ArrayField
from django.db import models


class TextArrayField(ArrayField):
    """`TEXT[]` on Postgres (as in the design's DDL); a JSON list in a text column elsewhere."""

    def __init__(self, **kwargs):
        kwargs.setdefault("base_field", models.TextField())
        super().__init__(**kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("base_field", None)
        return name, "alerts.fields.TextArrayField", args, kwargs

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return super().db_type(connection)
        return "text"

    def cast_db_type(self, connection):
        if connection.vendor == "postgresql":
            return super().cast_db_type(connection)
        return "text"

    def get_placeholder(self, value, compiler, connection):
        # ArrayField casts its parameter (`%s::text[]`), which only Postgres understands.
        if connection.vendor == "postgresql":
            return super().get_placeholder(value, compiler, connection)
        return "%s"

    def get_db_prep_value(self, value, connection, prepared=False):
        if connection.vendor == "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        return None if value is None else json.dumps(list(value))

    def from_db_value(self, value, expression, connection):
        if isinstance(value, str):
            return json.loads(value)
        return value
