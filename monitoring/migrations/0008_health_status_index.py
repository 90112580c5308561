"""A partial index on warning and critical health results, newest first, for admin's list filtered by status."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0007_api_token_expiry"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="systemhealthmetric",
            index=models.Index(
                condition=models.Q(("status", "healthy"), _negated=True),
                fields=["status", "-timestamp", "-id"],
                name="health_status_time_idx",
            ),
        ),
    ]
