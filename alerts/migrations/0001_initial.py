"""The design's table(s), column for column (adopt an existing one with `migrate --fake-initial`)."""

import alerts.fields
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
            name='AlertHistory',
            fields=[
                ('id', models.UUIDField(db_default=jobs.db.GenRandomUUID(), default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('alert_type', models.CharField(max_length=50)),
                ('severity', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning'), ('error', 'Error'), ('critical', 'Critical')], max_length=20)),
                ('title', models.CharField(max_length=200)),
                ('message', models.TextField()),
                ('job', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='alerts', to='jobs.job')),
                ('triggered_at', models.DateTimeField(db_default=jobs.db.DbNow(), default=django.utils.timezone.now)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('recipients', alerts.fields.TextArrayField(blank=True, null=True, size=None)),
                ('notification_sent', models.BooleanField(db_default=False, default=False, null=True)),
                ('escalated', models.BooleanField(db_default=False, default=False, null=True)),
                ('created_at', models.DateTimeField(db_default=jobs.db.DbNow(), default=django.utils.timezone.now, null=True)),
            ],
            options={
                'verbose_name': 'alert',
                'verbose_name_plural': 'alerts',
                'db_table': 'alert_history',
                'ordering': ['-triggered_at'],
            },
        ),
    ]
