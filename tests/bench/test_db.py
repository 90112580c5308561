"""The benchmark only ever creates, uses and drops databases whose name starts with bench_."""

import pytest

from bench.db import NotABenchDatabase, checked_name, maintenance_url, sibling_url


@pytest.mark.parametrize("name", ["bench_jobmonitor", "bench_x"])
def test_a_bench_database_is_accepted(name):
    assert checked_name(f"postgres://postgres@127.0.0.1:5432/{name}") == name


@pytest.mark.parametrize(
    "url",
    [
        "postgres://postgres@127.0.0.1:5432/jobmonitor",
        "postgres://postgres@127.0.0.1:5432/postgres",
        "postgres://postgres@127.0.0.1:5432/jm_bench",
        "postgres://postgres@127.0.0.1:5432/bench_",
        "postgres://postgres@127.0.0.1:5432/",
        "postgres://postgres@127.0.0.1:5432/benchmarks",
    ],
)
def test_any_other_database_is_refused(url):
    with pytest.raises(NotABenchDatabase, match="must start with 'bench_'"):
        checked_name(url)


def test_sqlite_is_refused():
    with pytest.raises(NotABenchDatabase, match="Postgres only"):
        checked_name("sqlite:///var/bench_db.sqlite3")


def test_figure_5s_database_is_a_bench_database_beside_the_main_one():
    assert sibling_url("postgres://u:p@db:5433/bench_x?sslmode=require", "_memory") == (
        "postgres://u:p@db:5433/bench_x_memory?sslmode=require"
    )
    with pytest.raises(NotABenchDatabase):
        sibling_url("postgres://u:p@db:5433/jobmonitor", "_memory")


def test_databases_are_created_and_dropped_from_the_servers_postgres_database():
    url = "postgres://u:p@db:5433/bench_x?sslmode=require"
    assert maintenance_url(url) == "postgres://u:p@db:5433/postgres?sslmode=require"


def test_the_baselines_connection_has_the_server_settings_of_the_applications(postgres_only):
    from bench.db import plain_connection

    with plain_connection() as conn:
        assert conn.execute("SHOW jit").fetchone() == ("off",)


def test_the_benchmarks_nodes_do_not_sample_their_resources():
    """As the periodic tasks, removed from its database: each node's own sampler reads the CPU for a
    second every minute and writes its readings, which competed with the figures (a run logged the
    cpu alert the benchmark's own load raised)."""
    from types import SimpleNamespace

    from bench.__main__ import Bench

    assert Bench(SimpleNamespace(only="1")).env["HEALTH_SAMPLE_NODE_RESOURCES"] == "false"
