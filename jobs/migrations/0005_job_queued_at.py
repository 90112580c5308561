"""When each job's current attempt was queued: tells a lost task from one waiting its turn."""

from django.db import migrations, models


def queued_jobs_were_queued_when_last_updated(apps, schema_editor):
    # Nothing else touches a queued job's row, so its updated_at is when it was queued.
    Job = apps.get_model("jobs", "Job")
    Job.objects.filter(status="queued").update(queued_at=models.F("updated_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0004_active_list_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="queued_at",
            field=models.DateTimeField(blank=True, help_text="When the current attempt was queued.", null=True),
        ),
        migrations.RunPython(queued_jobs_were_queued_when_last_updated, migrations.RunPython.noop, elidable=True),
    ]
