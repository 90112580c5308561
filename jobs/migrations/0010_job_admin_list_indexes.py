"""Admin's list of jobs (newest submitted first; by error class) read from indexes, not by sorting every job."""

from django.db import migrations, models

from jobs.db import AddIndexOnline


class Migration(migrations.Migration):
    # Built while the nodes keep writing jobs (CREATE INDEX CONCURRENTLY on Postgres).
    atomic = False

    dependencies = [
        ("jobs", "0009_job_type_pauses"),
    ]

    operations = [
        AddIndexOnline(
            model_name="job",
            index=models.Index(fields=["-created_at", "-id"], name="jobs_created_idx"),
        ),
        AddIndexOnline(
            model_name="job",
            index=models.Index(
                condition=models.Q(("error_class", ""), _negated=True),
                fields=["error_class", "-created_at", "-id"],
                name="jobs_error_class_idx",
            ),
        ),
    ]
