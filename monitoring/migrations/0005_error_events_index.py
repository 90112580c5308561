"""A partial index on failed attempts' timestamps for the error analysis of a timeframe."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0004_api_tokens"),
    ]

    operations = [
        migrations.AddIndex(
            model_name='jobexecutionlog',
            index=models.Index(condition=models.Q(('event_type', 'error')), fields=['timestamp'], name='job_logs_error_time_idx'),
        ),
    ]
