"""Upgrading a running system: `migrate` runs while nodes of the previous release still write
(docs/deployment.md, Upgrading). A column added to a table they write must not refuse their rows."""

from django.apps import apps
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader

from jobs.db import AddIndexOnline

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


# Applied everywhere before indexes were built online: their plain CREATE INDEX already ran.
INDEXED_BEFORE_ONLINE_BUILDS = {
    ("alerts", "0002_indexes"),
    ("alerts", "0009_failed_deliveries_index"),
    ("alerts", "0010_closed_state_fingerprint_index"),
    ("jobs", "0002_job_state_and_indexes"),
    ("jobs", "0003_metrics_covering_indexes"),
    ("jobs", "0004_active_list_index"),
    ("jobs", "0006_ormq_key_id_index"),
    ("jobs", "0007_queued_at_index"),
    ("jobs", "0008_error_fingerprint_index"),
    ("monitoring", "0002_indexes"),
    ("monitoring", "0005_error_events_index"),
    ("monitoring", "0006_metrics_covering_index"),
}


def test_an_index_added_to_a_running_system_does_not_stop_its_writers():
    """A plain CREATE INDEX holds a SHARE lock on its table until built: on a large `jobs` table every
    node's submits, claims and outcomes would wait for it (found by review in jobs 0010). New
    indexes are AddIndexOnline (CONCURRENTLY on Postgres), in a migration that is not atomic."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    blocking = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app not in PROJECT_APPS or (app, name) in INDEXED_BEFORE_ONLINE_BUILDS:
            continue
        for operation in migration.operations:
            if isinstance(operation, migrations.AddIndex) and not (
                isinstance(operation, AddIndexOnline) and not migration.atomic
            ):
                blocking.append(f"{app}.{name}: {operation.index.name}")
            if isinstance(operation, migrations.RunSQL) and "INDEX" in str(operation.sql).upper():
                blocking.append(f"{app}.{name}: RunSQL")

    assert blocking == []
