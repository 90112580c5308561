"""A database or Redis server that goes silent without closing its connections (a failover, a cut
network): a command on such a connection fails within DB_DEAD_AFTER_SECONDS or
REDIS_TIMEOUT_SECONDS, as in any outage (test_database_outage.py; Redis down), instead of holding
its thread for the ~15 minutes the kernel takes to give up (net.ipv4.tcp_retries2): a pusher's
dispatch, a worker's heartbeats, a submit's enqueue, a page.

The silence is real: a TCP relay in front of the server, and iptables dropping every packet of the
relay's port. A relay that merely stopped relaying would not do: its kernel would still acknowledge
what is sent and answer the keepalive probes. Needs root and iptables (.ci/run installs it);
skipped, with the reason, otherwise.
"""

import os
import shutil
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

from tests.conftest import wait_for
from tests.reliability.faults import _admin_connection

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
DEAD_AFTER_SECONDS = 3
# Far above DEAD_AFTER_SECONDS, far below the kernel's 15 minutes: only a connection left waiting fails.
PATIENCE_SECONDS = 60

# A node's own settings and connection; it queries when told to, and says how that ended.
SQL_CLIENT = """
import sys, time, django
django.setup()
from django.db import OperationalError, connection
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    print(cursor.fetchone()[0], flush=True)
sys.stdin.readline()
started = time.monotonic()
try:
    with connection.cursor() as cursor:
        cursor.execute(sys.argv[1])
except OperationalError as e:
    print("failed", round(time.monotonic() - started, 1), str(e).splitlines()[0], flush=True)
else:
    print("answered", flush=True)
"""

# The same through the broker a submit enqueues on (jobs.queue), or the cache (the login throttle).
REDIS_CLIENT = """
import sys, time, django
django.setup()
from django.core.cache import cache
from jobs.queue import shared_broker
broker = shared_broker()
broker.ping()
cache.get("warm")
print("connected", flush=True)
sys.stdin.readline()
started = time.monotonic()
try:
    broker.enqueue("task") if sys.argv[1] == "enqueue" else cache.get("key")
except Exception as e:
    print("failed", round(time.monotonic() - started, 1), type(e).__name__, e, flush=True)
else:
    print("answered", flush=True)
"""


class Relay:
    """Relays 127.0.0.1:<port> to a server, byte for byte."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.server_ports: list[int] = []  # its ports towards the server (a backend's client_port)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            self.server_ports.append(server.getsockname()[1])
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._copy, args=(source, sink), daemon=True).start()

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket):
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self):
        for sock in [self.listener, *self.sockets]:
            sock.close()


def iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=False)


def firewall_refusal() -> str | None:
    if shutil.which("iptables") is None:
        return "iptables is not installed (apt-get install iptables)"
    if os.geteuid() != 0:
        return "changing the firewall needs root"
    listed = iptables("-S", "INPUT")
    return None if listed.returncode == 0 else f"iptables cannot be used here: {listed.stderr.strip()}"


@contextmanager
def packets_dropped(port: int):
    """Every packet to and from `port` dropped, as on a cut network: nothing answered, nothing refused."""
    rules = [
        ["INPUT", "-p", "tcp", "--dport", str(port), "-j", "DROP"],
        ["INPUT", "-p", "tcp", "--sport", str(port), "-j", "DROP"],
    ]
    for rule in rules:
        added = iptables("-I", *rule)
        assert added.returncode == 0, added.stderr
    try:
        yield
    finally:
        for rule in rules:
            iptables("-D", *rule)


@pytest.fixture
def firewall():
    refusal = firewall_refusal()
    if refusal:
        pytest.skip(f"the silence is made with the firewall: {refusal}")


@pytest.fixture
def database_relay(db, firewall):
    if connection.vendor != "postgresql":
        pytest.skip("the fault is a Postgres server gone silent: set DATABASE_URL=postgres://… to run it")
    db = connection.settings_dict
    relay = Relay(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    yield relay
    relay.close()
    # Their backends would notice only at their next read; the test database is dropped before.
    with _admin_connection() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(%s)", [relay.server_ports]
        )


@pytest.fixture
def redis_relay(firewall):
    """The URL of the Redis of REDIS_TEST_URL, through a relay."""
    url = urlsplit(os.environ.get("REDIS_TEST_URL", ""))
    if not url.hostname:
        pytest.skip("set REDIS_TEST_URL=redis://… to run this on Redis too")
    relay = Relay(url.hostname, url.port or 6379)
    yield url._replace(netloc=f"127.0.0.1:{relay.port}").geturl()
    relay.close()


def node(client: str, arg: str, **env) -> subprocess.Popen:
    """A process on the project's settings, as a node runs them; its first line says it is connected."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x" * 60, **env}
    return subprocess.Popen(
        [sys.executable, "-c", client, arg], env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def database_node(relay: Relay, query: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{relay.port}/{db['NAME']}",
        "DB_DEAD_AFTER_SECONDS": str(DEAD_AFTER_SECONDS),
    }
    if db["PASSWORD"]:
        env["PGPASSWORD"] = db["PASSWORD"]
    return node(SQL_CLIENT, query, **env)


def go(node: subprocess.Popen):
    node.stdin.write("go\n")
    node.stdin.flush()


def outcome(node: subprocess.Popen) -> str:
    try:
        out, _ = node.communicate(timeout=PATIENCE_SECONDS)
    except subprocess.TimeoutExpired:
        node.kill()
        node.communicate()
        return f"still waiting after {PATIENCE_SECONDS} s"
    return out.strip()


def backend_runs(pid: int, query: str) -> bool:
    with _admin_connection() as admin:
        found = admin.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s AND state = 'active'", [pid]
        ).fetchone()
    return found is not None and found[0] == query


@pytest.mark.postgres
def test_a_query_sent_to_a_silent_database_fails_within_db_dead_after_seconds(database_relay, figures):
    """Nothing acknowledges the query: tcp_user_timeout gives up on it."""
    node = database_node(database_relay, "SELECT 1")
    node.stdout.readline()  # connected through the relay

    with packets_dropped(database_relay.port):
        go(node)
        ended = outcome(node)

    assert ended.startswith("failed"), ended
    figures(ended)  # "failed <seconds> <libpq's error>"


@pytest.mark.postgres
def test_a_query_whose_answer_never_comes_fails_within_db_dead_after_seconds(database_relay, figures):
    """The server took the query, then went silent while it ran: the keepalive probes go unanswered."""
    query = "SELECT pg_sleep(2)"
    node = database_node(database_relay, query)
    pid = int(node.stdout.readline())
    go(node)
    wait_for(lambda: backend_runs(pid, query), timeout=10, message="the query running on the server")

    with packets_dropped(database_relay.port):
        ended = outcome(node)

    assert ended.startswith("failed"), ended
    figures(ended)


@pytest.mark.parametrize("command", ["enqueue", "cache"])
def test_a_redis_command_to_a_silent_server_fails_within_redis_timeout_seconds(redis_relay, figures, command):
    """A submit's enqueue (its job is then left to the lost-job sweep) and the cache the login throttle reads."""
    node_ = node(REDIS_CLIENT, command, REDIS_URL=redis_relay, REDIS_TIMEOUT_SECONDS=str(DEAD_AFTER_SECONDS))
    assert node_.stdout.readline().strip() == "connected"

    with packets_dropped(urlsplit(redis_relay).port):
        go(node_)
        ended = outcome(node_)

    assert ended.startswith("failed"), ended
    figures(ended)
