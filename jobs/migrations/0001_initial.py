"""The design's tables as its DDL has them (`jobs` holds just its key here).

An existing database that already has them is adopted with `migrate --fake-initial`;
what this project adds comes in 0002.
"""

import django.db.models.deletion
import django.utils.timezone
import jobs.db
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='Job',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
            ],
            options={
                'db_table': 'jobs',
            },
        ),
        migrations.CreateModel(
            name='JobRetryHistory',
            fields=[
                ('id', models.UUIDField(db_default=jobs.db.GenRandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('job', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='attempt_history', to='jobs.job')),
                ('attempt_number', models.IntegerField()),
                ('started_at', models.DateTimeField(db_default=jobs.db.DbNow(), default=django.utils.timezone.now)),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
                ('status', models.CharField(choices=[('running', 'Running'), ('success', 'Success'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], max_length=20)),
                ('error_message', models.TextField(blank=True, null=True)),
                ('retry_delay_seconds', models.IntegerField(blank=True, null=True)),
                ('created_at', models.DateTimeField(db_default=jobs.db.DbNow(), default=django.utils.timezone.now, null=True)),
            ],
            options={
                'verbose_name_plural': 'job retry history',
                'db_table': 'job_retry_history',
                'ordering': ['job', 'attempt_number'],
            },
        ),
    ]
