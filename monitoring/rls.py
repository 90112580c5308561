"""Row-level security on every table of the project (PostgreSQL).

Supabase publishes the tables of the `public` schema through its Data API (PostgREST), to its
`anon` and `authenticated` roles, unless row-level security is on. With it on and no policy, a
role other than the table's owner reads and writes nothing; the application connects as the
owner, which RLS does not restrict, so nothing changes for it.

Enabled after every `migrate` (post_migrate), on each table of the current schema that lacks
it, so tables added later (by any app, or by django-q2 and the cache) are covered too. Tables
owned by a role this connection cannot act for are left alone: they are not the project's.
"""

from django.db import DEFAULT_DB_ALIAS, connections

TABLES_WITHOUT_RLS = """
    SELECT c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema()
      AND c.relkind IN ('r', 'p')
      AND NOT c.relrowsecurity
      AND pg_has_role(c.relowner, 'MEMBER')
    ORDER BY c.relname
"""


def enable_row_level_security(using: str = DEFAULT_DB_ALIAS, verbosity: int = 1, **kwargs) -> list[str]:
    """Enable RLS on the tables of the current schema that lack it; returns their names."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(TABLES_WITHOUT_RLS)
        tables = [name for (name,) in cursor.fetchall()]
        for table in tables:
            cursor.execute(f"ALTER TABLE {connection.ops.quote_name(table)} ENABLE ROW LEVEL SECURITY")
    if tables and verbosity >= 2:
        print(f"  Row-level security enabled on {len(tables)} tables: {', '.join(tables)}")
    return tables
