"""Indexes the performance metrics read alone (index-only scans), so their cost follows the window."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0002_job_state_and_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='jobretryhistory',
            name='job_retry_history_started_idx',
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(fields=['id', 'job_type'], name='jobs_id_type_idx'),
        ),
        migrations.AddIndex(
            model_name='jobretryhistory',
            index=models.Index(fields=['started_at', 'job', 'attempt_number'], name='job_retry_history_started_idx'),
        ),
    ]
