"""Admin's list of jobs (newest submitted first; by error class) read from indexes, not by sorting every job."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0009_job_type_pauses"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["-created_at", "-id"], name="jobs_created_idx"),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("error_class", ""), _negated=True),
                fields=["error_class", "-created_at", "-id"],
                name="jobs_error_class_idx",
            ),
        ),
    ]
