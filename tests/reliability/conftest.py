import os
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

import tests.jobs.executors  # noqa: F401  (test.echo and friends, also when tests/jobs is not collected)
import tests.reliability.executors  # noqa: F401  (registers the suite's job types here too: pytest submits them)
from tests.reliability.executors import RUN_LOG_ENV
from tests.reliability.faults import Relay, _admin_connection, firewall_refusal
from tests.reliability.nodes import Node, WebServer, process_env


class RunLog:
    """What the suite's executors really ran: (job id, attempt) -> number of runs."""

    def __init__(self, path: Path):
        self.path = path
        path.touch()

    def runs(self) -> Counter:
        lines = self.path.read_text().split("\n")
        return Counter((job_id, int(attempt)) for job_id, attempt, _pid in (line.split() for line in lines if line))


FIGURES: list[str] = []


@pytest.fixture
def figures(request):
    """figures("...") : a measurement, listed at the end of the run (throughput, events kept…)."""
    return lambda text: FIGURES.append(f"{request.node.name}: {text}")


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.failed_somewhere = True
    return report


def print_logs_if_failed(request, processes) -> None:
    """The processes' output, which pytest shows with the failure (and nothing when all went well)."""
    if getattr(request.node, "failed_somewhere", False):
        for process in processes:
            print(f"---- {process.name} ----\n{process.log()[-20_000:]}")


@pytest.fixture
def run_log(tmp_path) -> RunLog:
    return RunLog(tmp_path / "runs.log")


def redis_test_url() -> str:
    url = os.environ.get("REDIS_TEST_URL", "")
    if not url:
        pytest.skip("set REDIS_TEST_URL=redis://… to run this on the Redis broker too")
    return url


@pytest.fixture
def use_broker(monkeypatch):
    """use_broker("orm" | "redis"): the broker this pytest process enqueues on; returns its Redis URL or ""."""
    from django_q.conf import Conf

    import jobs.queue
    from jobs import clock

    def use(kind: str) -> str:
        url = ""
        if kind == "redis":
            url = redis_test_url()
            monkeypatch.setattr(Conf, "BROKER_CLASS", "jobs.brokers.RedisBroker")
            monkeypatch.setattr(Conf, "REDIS", url)
        monkeypatch.setattr(jobs.queue, "_broker", None)
        broker = jobs.queue.shared_broker()
        broker.purge_queue()
        if kind == "redis":
            # A Redis in use before the test, as in any deployment: a new one looks like one that
            # lost its data, and the first sweep would enqueue jobs submitted before it once more.
            broker.tasks_lost_before(clock.now())
        return url

    yield use
    broker = jobs.queue.shared_broker()
    broker.purge_queue()  # Redis keeps what the database flush does not
    if hasattr(broker, "marker_key"):
        broker.connection.delete(broker.marker_key)
    monkeypatch.setattr(jobs.queue, "_broker", None)


@pytest.fixture
def cluster_nodes(request, transactional_db, fast_jobs, tmp_path, run_log, use_broker):
    """start(count, workers=2, broker="orm", **env) -> that many `manage.py qcluster` nodes, running.

    Stopped after the test, before the database is flushed; their output is shown if it failed.
    """
    started: list[Node] = []

    def start(count: int = 2, *, workers: int = 2, broker: str = "orm", **env) -> list[Node]:
        redis_url = use_broker(broker)
        base_env = process_env(redis_url=redis_url, **{RUN_LOG_ENV: str(run_log.path)}, **env)
        names = "abcdefgh"[len(started) : len(started) + count]
        nodes = [Node(f"node-{name}", workers=workers, env=base_env, log_dir=tmp_path).start() for name in names]
        started.extend(nodes)
        return [node.wait_ready() for node in nodes]

    yield start
    for node in started:
        node.stop()
    print_logs_if_failed(request, started)


@pytest.fixture
def web_server(request, transactional_db, tmp_path):
    """A gunicorn web server on the test database."""
    server = WebServer(env=process_env(), log_dir=tmp_path).start()
    try:
        yield server.wait_ready()
    finally:
        server.stop()
        print_logs_if_failed(request, [server])


@pytest.fixture
def firewall():
    refusal = firewall_refusal()
    if refusal:
        pytest.skip(f"the silence is made with the firewall: {refusal}")


@pytest.fixture
def database_relay(db, firewall):
    if connection.vendor != "postgresql":
        pytest.skip("the fault is a Postgres connection gone silent: set DATABASE_URL=postgres://… to run it")
    db = connection.settings_dict
    relay = Relay(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    yield relay
    relay.close()
    # Their backends would notice only at their next read; the test database is dropped before.
    with _admin_connection() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(%s)", [relay.server_ports]
        )
