from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from monitoring import checks  # noqa: F401  (registers the settings check)
        from monitoring.rls import enable_row_level_security

        # After every app's migrations, whichever app's tables come last (idempotent, one query).
        post_migrate.connect(enable_row_level_security, dispatch_uid="monitoring.enable_row_level_security")
