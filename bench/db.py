"""The benchmark's own Postgres database: created at the start, dropped at the end.

It refuses any database whose name does not start with `bench_`, so a mistyped URL can
never point it at real data.
"""

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_jobmonitor"
PREFIX = "bench_"


class NotABenchDatabase(ValueError):
    pass


def database_url() -> str:
    return os.getenv("BENCH_DATABASE_URL") or DEFAULT_URL


def checked_name(url: str) -> str:
    """The database name in `url`, if it is a benchmark database; raises NotABenchDatabase otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise NotABenchDatabase(f"the benchmark runs on Postgres only, not {parts.scheme or url!r}")
    name = parts.path.lstrip("/")
    if not name.startswith(PREFIX) or len(name) == len(PREFIX):
        raise NotABenchDatabase(
            f"refusing database {name!r}: the benchmark creates and drops its database, so its name must "
            f"start with {PREFIX!r} (set BENCH_DATABASE_URL)"
        )
    return name


def sibling_url(url: str, suffix: str) -> str:
    """Another benchmark database on the same server: `url`'s name with `suffix` added."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{checked_name(url)}{suffix}"))


def maintenance_url(url: str) -> str:
    """The same server, its `postgres` database (where CREATE/DROP DATABASE run)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def create_database(url: str) -> None:
    name = checked_name(url)
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        # Left over by an interrupted run: it is a benchmark database, so it can go.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    name = checked_name(url)
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def connect(url: str, **kwargs) -> psycopg.Connection:
    """A plain psycopg connection to the benchmark database (never to another one)."""
    checked_name(url)
    return psycopg.connect(url, **kwargs)


def plain_connection(**kwargs) -> psycopg.Connection:
    """A psycopg connection of its own to the database Django uses (the baselines' side)."""
    from django.conf import settings

    from monitoring.apps import session_setup

    db = settings.DATABASES["default"]
    conninfo = psycopg.conninfo.make_conninfo(
        host=db["HOST"], port=db["PORT"] or None, dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None
    )
    conn = psycopg.connect(conninfo, **kwargs)
    # The server settings Django's connections get, so a baseline differs from the application
    # only in what runs on the client.
    conn.execute(*session_setup())
    return conn
