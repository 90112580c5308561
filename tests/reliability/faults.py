"""Faults injected for real."""

from contextlib import contextmanager

import psycopg
from django.db import connection
from psycopg import sql


def _admin_connection() -> psycopg.Connection:
    """A connection to the server's `postgres` database, which the outage leaves alone."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "localhost",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


@contextmanager
def database_unreachable():
    """While the block runs, the test database refuses new connections and has lost all it had.

    Only this test database: the server, and everyone else's databases on it, keep running.
    Yields the number of connections terminated.
    """
    name = sql.Identifier(connection.settings_dict["NAME"])
    with _admin_connection() as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(name))
        try:
            terminated = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [connection.settings_dict["NAME"]],
            ).fetchone()[0]
            yield terminated
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(name))
    connection.close()  # this process's own connection was one of those terminated


def redis_lost_its_data(broker) -> int:
    """What FLUSHDB, or a restart without persistence, does to this run's queue: all of its keys (the
    queue, its urgent lane, the broker's marker, the clusters' statuses) gone at once, in one MULTI,
    and nothing of another run sharing the Redis database. Returns the number of tasks lost."""
    prefix = broker.list_key.removesuffix(":q")
    keys = {broker.list_key, broker.urgent_key, broker.marker_key, *broker.connection.scan_iter(f"{prefix}:*")}
    with broker.connection.pipeline(transaction=True) as flush:
        flush.llen(broker.list_key)
        flush.llen(broker.urgent_key)
        flush.delete(*keys)
        queued, urgent, _ = flush.execute()
    return queued + urgent
