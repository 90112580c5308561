"""API tokens expire: existing ones get no expiry (NULL, never), so no integration breaks on upgrade;
new ones expire after 90 days by default (monitoring/tokens.py)."""

from django.conf import settings
from django.db import migrations, models

from jobs.db import AddIndexOnline


class Migration(migrations.Migration):
    # The index is built while requests keep touching tokens (CREATE INDEX CONCURRENTLY on Postgres).
    atomic = False
    dependencies = [
        ('monitoring', '0006_metrics_covering_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='apitoken',
            name='expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        AddIndexOnline(
            model_name='apitoken',
            index=models.Index(condition=models.Q(('expires_at__isnull', False), ('revoked_at__isnull', True)), fields=['last_used_at'], name='api_tokens_expiring_idx'),
        ),
    ]
