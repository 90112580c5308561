from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

JIT_OFF = "SET jit = off"


def turn_jit_off(sender, connection, **kwargs):
    """JIT compiling pays off for queries running seconds; the heaviest here (a day of metrics
    over millions of events) runs a few hundred ms, and compiling it added ~65 ms each time
    (docs/benchmark.md, finding 5). A SET, not a startup option, which some poolers refuse;
    behind a transaction pooler a session setting would land on any server connection, so
    there it is left to `ALTER ROLE … SET jit = off` (docs/deployment.md)."""
    if connection.vendor == "postgresql" and settings.DATABASE_POOLER != "transaction":
        with connection.cursor() as cursor:
            cursor.execute(JIT_OFF)


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from monitoring import checks  # noqa: F401  (registers the settings check)
        from monitoring.rls import enable_row_level_security

        # After every app's migrations, whichever app's tables come last (idempotent, one query).
        post_migrate.connect(enable_row_level_security, dispatch_uid="monitoring.enable_row_level_security")
        connection_created.connect(turn_jit_off, dispatch_uid="monitoring.turn_jit_off")
