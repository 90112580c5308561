"""Indexes for the timeline, the metrics window, health history and retention."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name='systemhealthmetric',
            index=models.Index(fields=['metric_type', 'metric_name', '-timestamp'], name='health_component_time_idx'),
        ),
        migrations.AddIndex(
            model_name='systemhealthmetric',
            index=models.Index(fields=['timestamp'], name='health_time_idx'),
        ),
        migrations.AddIndex(
            model_name='jobexecutionlog',
            index=models.Index(fields=['job', 'timestamp'], name='job_logs_job_time_idx'),
        ),
        migrations.AddIndex(
            model_name='jobexecutionlog',
            index=models.Index(condition=models.Q(('event_type__in', ('completed', 'error', 'cancelled'))), fields=['timestamp'], name='job_logs_outcome_time_idx'),
        ),
        migrations.AddIndex(
            model_name='jobexecutionlog',
            index=models.Index(fields=['timestamp'], name='job_logs_time_idx'),
        ),
    ]
