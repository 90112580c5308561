from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        # Register the built-in job types (demo.sleep, demo.fail, ai_matching).
        from jobs import checks, executors  # noqa: F401  (checks registers the JOBS_TYPES check)
        from jobs.schedules import sync_schedules

        post_migrate.connect(sync_schedules, sender=self)
