from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def session_setup() -> tuple[str, list[str]]:
    """The statement that gives a new Postgres session settings.DB_SESSION_SETTINGS (JIT off; the
    server's keepalives toward this node), in one round trip."""
    names = settings.DB_SESSION_SETTINGS
    sql = "SELECT " + ", ".join("set_config(%s, %s, false)" for _ in names)
    return sql, [str(part) for name, value in names.items() for part in (name, value)]


def configure_session(sender, connection, **kwargs):
    """Set each new session up (session_setup). Set, not startup options, which some poolers
    refuse; behind a transaction pooler a session setting would land on any server connection, so
    there they are left to `ALTER ROLE … SET` (docs/deployment.md)."""
    if connection.vendor == "postgresql" and settings.DATABASE_POOLER != "transaction" and settings.DB_SESSION_SETTINGS:
        with connection.cursor() as cursor:
            cursor.execute(*session_setup())


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from monitoring import checks  # noqa: F401  (registers the settings check)
        from monitoring.rls import enable_row_level_security

        # After every app's migrations, whichever app's tables come last (idempotent, one query).
        post_migrate.connect(enable_row_level_security, dispatch_uid="monitoring.enable_row_level_security")
        connection_created.connect(configure_session, dispatch_uid="monitoring.configure_session")
