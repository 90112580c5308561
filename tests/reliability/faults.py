"""Faults injected for real."""

import os
import shutil
import socket
import subprocess
import threading
from contextlib import contextmanager, suppress

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

    @property
    def path(self) -> list[int]:
        """Its ports on both legs: dropped, the path is cut both ways, and the server hears nothing
        from its clients either (its own keepalives go unanswered), as across a real partition."""
        return [self.port, *self.server_ports]

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
def packets_dropped(*ports: int):
    """Every packet to and from each of `ports` dropped, as on a cut network: nothing answered, nothing refused."""
    rules = [
        ["INPUT", "-i", "lo", "-p", "tcp", f"--{way}", str(port), "-j", "DROP"]
        for port in ports
        for way in ("dport", "sport")
    ]
    added = []  # removed whatever happens, and only those: no rule left behind by a failed insert
    try:
        for rule in rules:
            inserted = iptables("-I", *rule)
            assert inserted.returncode == 0, inserted.stderr
            added.append(rule)
        yield
    finally:
        for rule in added:
            iptables("-D", *rule)
