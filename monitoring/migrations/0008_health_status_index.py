"""A partial index on warning and critical health results, newest first, for admin's list filtered by status."""

from django.db import migrations, models

from jobs.db import AddIndexOnline


class Migration(migrations.Migration):
    # Built while every node's health checks keep writing results (CONCURRENTLY on Postgres).
    atomic = False

    dependencies = [
        ("monitoring", "0007_api_token_expiry"),
    ]

    operations = [
        AddIndexOnline(
            model_name="systemhealthmetric",
            index=models.Index(
                condition=models.Q(("status", "healthy"), _negated=True),
                fields=["status", "-timestamp", "-id"],
                name="health_status_time_idx",
            ),
        ),
    ]
