"""Postgres plans for tests that say a query is served by an index."""

from django.db import connection, transaction


def plan(sql: str) -> str:
    """Postgres's plan for `sql` with sorts and sequential scans priced out: what remains of them
    is what no index can spare (a table of a few test rows would be scanned and sorted anyway)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())
