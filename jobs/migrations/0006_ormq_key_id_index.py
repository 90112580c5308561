"""An index on django-q2's task table for how jobs.brokers.ORMBroker polls it: the tasks of one
list (the queue, or its urgent lane), oldest first. Without it, asking for the urgent lane's
tasks reads the whole backlog on every poll when there are none."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0005_job_queued_at"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS jobs_ormq_key_id_idx ON django_q_ormq (key, id)",
            "DROP INDEX IF EXISTS jobs_ormq_key_id_idx",
        ),
    ]
