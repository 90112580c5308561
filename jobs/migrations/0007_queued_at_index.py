"""A queued job's place in the queue, counted from an index (the dashboard's job page)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0006_ormq_key_id_index'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('status', 'queued')), fields=['queued_at'], name='jobs_queued_at_idx'),
        ),
    ]
