"""What the job manager keeps on `jobs`, and the indexes its queries need.

On an adopted database `jobs` may already hold the platform's rows: they become finished
jobs of type "legacy", so nothing tries to run them.
"""

import django.utils.timezone
from django.db import migrations, models


def mark_existing_rows_finished(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    Job.objects.filter(job_type="legacy").update(
        status="completed", message="existed before the job monitor was installed"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='job',
            options={'ordering': ['-updated_at']},
        ),
        migrations.AddField(
            model_name='job',
            name='job_type',
            field=models.CharField(default='legacy', max_length=100),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='job',
            name='parameters',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='job',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('retrying', 'Retrying'), ('completed', 'Completed'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=20),
        ),
        migrations.AddField(
            model_name='job',
            name='progress',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='job',
            name='message',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='job',
            name='attempts',
            field=models.PositiveIntegerField(default=0, help_text='Attempts started so far.'),
        ),
        migrations.AddField(
            model_name='job',
            name='max_attempts',
            field=models.PositiveIntegerField(default=3),
        ),
        migrations.AddField(
            model_name='job',
            name='submitted_by',
            field=models.CharField(blank=True, default='', max_length=150),
        ),
        migrations.AddField(
            model_name='job',
            name='created_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name='job',
            name='updated_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name='job',
            name='started_at',
            field=models.DateTimeField(blank=True, help_text='Start of the first attempt.', null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='attempt_started_at',
            field=models.DateTimeField(blank=True, help_text='Start of the current attempt.', null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='finished_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='heartbeat_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='worker',
            field=models.CharField(blank=True, default='', help_text='host:pid of the worker running it.', max_length=255),
        ),
        migrations.AddField(
            model_name='job',
            name='next_attempt_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='retry_delay',
            field=models.FloatField(blank=True, help_text='Planned seconds before the next attempt.', null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='cancel_requested_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='result',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='last_error',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='error_class',
            field=models.CharField(blank=True, default='', max_length=20),
        ),
        migrations.RunPython(mark_existing_rows_finished, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('status__in', ('queued', 'running', 'retrying'))), fields=['-updated_at'], name='jobs_active_recent_idx'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('status__in', ('queued', 'running', 'retrying'))), fields=['job_type', '-updated_at'], name='jobs_active_type_idx'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('status__in', ('queued', 'running', 'retrying'))), fields=['status', '-updated_at'], name='jobs_active_status_idx'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('status', 'running')), fields=['heartbeat_at'], name='jobs_running_heartbeat_idx'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('status', 'retrying')), fields=['next_attempt_at'], name='jobs_retry_due_idx'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(fields=['job_type', '-finished_at'], name='jobs_type_finished_idx'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(fields=['status', '-finished_at'], name='jobs_status_finished_idx'),
        ),
        migrations.AddIndex(
            model_name='jobretryhistory',
            index=models.Index(fields=['started_at'], name='job_retry_history_started_idx'),
        ),
        migrations.AddConstraint(
            model_name='jobretryhistory',
            constraint=models.UniqueConstraint(fields=('job', 'attempt_number'), name='job_retry_history_attempt_uniq'),
        ),
    ]
