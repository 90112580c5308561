"""Indexes for open alerts and alert history."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name='alerthistory',
            index=models.Index(condition=models.Q(('resolved_at__isnull', True)), fields=['-triggered_at'], name='alert_open_idx'),
        ),
        migrations.AddIndex(
            model_name='alerthistory',
            index=models.Index(fields=['-triggered_at'], name='alert_triggered_idx'),
        ),
    ]
