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
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

from tests.conftest import wait_for
from tests.reliability.faults import Relay, _admin_connection, packets_dropped

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

# A node's own settings and connection, in a transaction that holds a lock; it waits for ever.
LOCK_HOLDER = """
import sys, django
django.setup()
from django.db import connection, transaction
with transaction.atomic(), connection.cursor() as cursor:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(sys.argv[1])])
    cursor.execute("SELECT pg_backend_pid()")
    print(cursor.fetchone()[0], flush=True)
    sys.stdin.readline()
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


def database_node(relay: Relay, query: str, client: str = SQL_CLIENT) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{relay.port}/{db['NAME']}",
        "DB_DEAD_AFTER_SECONDS": str(DEAD_AFTER_SECONDS),
    }
    if db["PASSWORD"]:
        env["PGPASSWORD"] = db["PASSWORD"]
    return node(client, query, **env)


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
    query = "SELECT pg_sleep(60)"  # its answer never comes in time, however long the setup took
    node = database_node(database_relay, query)
    pid = int(node.stdout.readline())
    go(node)
    wait_for(lambda: backend_runs(pid, query), timeout=10, message="the query running on the server")

    with packets_dropped(database_relay.port):
        ended = outcome(node)

    assert ended.startswith("failed"), ended
    figures(ended)


def backend_alive(pid: int) -> bool:
    with _admin_connection() as admin:
        return admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is not None


@pytest.mark.postgres
def test_a_transaction_left_open_by_a_client_cut_off_ends_within_db_dead_after_seconds(database_relay, figures):
    """Seen from the server: a node cut off in the middle of a transaction (its outcome, its claim)
    leaves its backend idle in that transaction, holding its row locks, until the server notices the
    client gone. With the kernel's keepalive defaults that is after 2 hours and more: a sweep taking
    the node's job back waited on the job's row all that time. The node's connections ask the server
    for the same keepalives and tcp_user_timeout as their own: its backend ends, its locks go with it."""
    node = database_node(database_relay, str(os.getpid()), client=LOCK_HOLDER)
    pid = int(node.stdout.readline())  # in its transaction, the lock held

    try:
        with packets_dropped(*database_relay.path):
            started = time.monotonic()
            wait_for(lambda: not backend_alive(pid), timeout=60, message="the cut-off client's backend to end")
            ended = f"ended after {time.monotonic() - started:.1f} s"
    finally:
        node.kill()
        node.communicate()

    figures(f"the backend of a client cut off in a transaction {ended}")


@pytest.mark.parametrize("command", ["enqueue", "cache"])
def test_a_redis_command_to_a_silent_server_fails_within_redis_timeout_seconds(redis_relay, figures, command):
    """A submit's enqueue (its job is then left to the lost-job sweep) and the cache the login throttle reads.
    Within the setting, not redis-py's own 5 s (redis-py 8's default; earlier releases wait for ever)."""
    node_ = node(REDIS_CLIENT, command, REDIS_URL=redis_relay, REDIS_TIMEOUT_SECONDS="2")
    assert node_.stdout.readline().strip() == "connected"

    with packets_dropped(urlsplit(redis_relay).port):
        go(node_)
        ended = outcome(node_)

    assert ended.startswith("failed"), ended
    assert float(ended.split()[1]) < 3.5, ended  # "failed <seconds> …"
    figures(ended)
