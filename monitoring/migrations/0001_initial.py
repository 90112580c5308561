"""The design's table(s), column for column (adopt an existing one with `migrate --fake-initial`)."""

import django.db.models.deletion
import django.utils.timezone
import jobs.db
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('jobs', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='SystemHealthMetric',
            fields=[
                ('id', models.UUIDField(db_default=jobs.db.GenRandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('timestamp', models.DateTimeField(db_default=jobs.db.DbNow(), default=django.utils.timezone.now)),
                ('metric_type', models.CharField(choices=[('database', 'Database'), ('api', 'Api'), ('resource', 'Resource'), ('job_queue', 'Job Queue')], max_length=50)),
                ('metric_name', models.CharField(max_length=100)),
                ('metric_value', models.DecimalField(decimal_places=2, max_digits=10)),
                ('status', models.CharField(choices=[('healthy', 'Healthy'), ('warning', 'Warning'), ('critical', 'Critical')], max_length=20)),
                ('details', models.JSONField(blank=True, null=True)),
                ('created_at', models.DateTimeField(db_default=jobs.db.DbNow(), default=django.utils.timezone.now, null=True)),
            ],
            options={
                'db_table': 'system_health_metrics',
                'ordering': ['-timestamp'],
            },
        ),
        migrations.CreateModel(
            name='JobExecutionLog',
            fields=[
                ('id', models.UUIDField(db_default=jobs.db.GenRandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('job', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='logs', to='jobs.job')),
                ('event_type', models.CharField(choices=[('queued', 'Queued'), ('started', 'Started'), ('progress', 'Progress'), ('cancel_requested', 'Cancel Requested'), ('error', 'Error'), ('retry', 'Retry'), ('completed', 'Completed'), ('cancelled', 'Cancelled')], max_length=50)),
                ('timestamp', models.DateTimeField(db_default=jobs.db.DbNow(), default=django.utils.timezone.now)),
                ('status', models.CharField(max_length=20)),
                ('progress', models.IntegerField(db_default=0, default=0, null=True)),
                ('message', models.TextField(blank=True, null=True)),
                ('details', models.JSONField(blank=True, null=True)),
                ('error_details', models.JSONField(blank=True, null=True)),
                ('execution_time_ms', models.IntegerField(blank=True, null=True)),
                ('memory_usage_mb', models.IntegerField(blank=True, null=True)),
                ('created_at', models.DateTimeField(db_default=jobs.db.DbNow(), default=django.utils.timezone.now, null=True)),
            ],
            options={
                'db_table': 'job_execution_logs',
                'ordering': ['timestamp'],
            },
        ),
    ]
