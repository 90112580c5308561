"""Upgrading a running system: `migrate` runs while nodes of the previous release still write
(docs/deployment.md, Upgrading). A column added to a table they write must not refuse their rows."""

from django.apps import apps
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader

PROJECT_APPS = ("jobs", "monitoring", "alerts")
# The jobs table got its columns before the first release ran anywhere: no older node writes it.
BEFORE_THE_FIRST_RELEASE = {("jobs", "0002_job_state_and_indexes")}


def added_columns():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app in PROJECT_APPS and (app, name) not in BEFORE_THE_FIRST_RELEASE:
            for operation in migration.operations:
                if isinstance(operation, migrations.AddField):
                    yield app, name, operation.model_name, operation.name


def test_every_column_added_to_a_table_takes_rows_that_do_not_name_it():
    """Drill: alerts 0005 added acknowledged_by NOT NULL with a Python default only; a node of the
    release before, running beside the migrated database, could open no alert ("null value in
    column acknowledged_by"), retried it as a race three times and gave up: its failures raised none."""
    refused = []
    for app, migration, model_name, field_name in added_columns():
        field = apps.get_model(app, model_name)._meta.get_field(field_name)
        if not field.null and field.db_default is models.NOT_PROVIDED:
            refused.append(f"{app}.{migration}: {model_name}.{field_name}")

    assert refused == []
