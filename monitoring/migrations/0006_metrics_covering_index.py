"""The outcome events' index holds what the metrics read, so they never visit the table's pages."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0003_metrics_covering_indexes'),
        ('monitoring', '0005_error_events_index'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='jobexecutionlog',
            name='job_logs_outcome_time_idx',
        ),
        migrations.AddIndex(
            model_name='jobexecutionlog',
            index=models.Index(condition=models.Q(('event_type__in', ('completed', 'error', 'cancelled'))), fields=['timestamp', 'job', 'event_type', 'status', 'execution_time_ms'], name='job_logs_outcome_time_idx'),
        ),
    ]
