"""Processes started beside pytest on its test database, as production runs them: `manage.py
qcluster` nodes (each its own sentinel, pusher, monitor and workers) and a gunicorn web server.

Each runs in its own session (process group), so stopping it ends everything it forked and
nothing else; its output goes to a log file in the test's tmp_path, printed when a test fails.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
from django.db import connection
from django_q.conf import Conf

from tests.conftest import wait_for

BASE_DIR = Path(__file__).resolve().parents[2]

# The timings of the `fast_jobs` fixture (but a longer stale limit), for processes that read them from the environment.
FAST_JOBS_ENV = {
    "JOBS_RETRY_MAX_ATTEMPTS": "3",
    "JOBS_RETRY_BASE_DELAY": "0.1",
    "JOBS_RETRY_MAX_DELAY": "2",
    "JOBS_PROGRESS_INTERVAL": "0",
    "JOBS_HEARTBEAT_INTERVAL": "0.2",
    # 15 heartbeats: on 2 loaded cores (SQLite's write lock, a demo beside the suite) a live
    # worker's heartbeat was once held past 1.5 s and its attempt taken back.
    "JOBS_STALE_AFTER": "3",
    "JOBS_DISPATCH_INTERVAL": "0.1",
    "JOBS_SWEEP_INTERVAL": "0.2",
}


def test_database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test database)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(*, redis_url: str = "", **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env.pop("REDIS_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.reliability.node_settings",
        DATABASE_URL=test_database_url(),
        # The queue (and signing salt) of this pytest process, which enqueues the jobs.
        Q_CLUSTER_NAME=Conf.PREFIX,
        LOG_LEVEL=os.environ.get("RELIABILITY_LOG_LEVEL", "WARNING"),
        Q_LOG_LEVEL=os.environ.get("RELIABILITY_LOG_LEVEL", "WARNING"),
        PYTHONUNBUFFERED="1",
        **FAST_JOBS_ENV,
    )
    if redis_url:
        env["REDIS_URL"] = redis_url  # the Redis broker (and cache), as config/settings.py sets them up
    env.update(extra)
    return env


class Process:
    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self):
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.args, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def descendants(self) -> list[psutil.Process]:
        """Its live descendants (a worker killed and not yet reaped by its sentinel is a zombie)."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        alive = []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    alive.append(child)
            except psutil.NoSuchProcess:
                pass
        return alive

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL to the whole process group after `grace` s."""
        if self.popen is None:
            return
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # its group only: it was started in a session of its own
        except ProcessLookupError:
            pass
        self.popen.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Node(Process):
    """`python manage.py qcluster` with `workers` worker processes."""

    def __init__(self, name: str, *, workers: int, env: dict, log_dir: Path):
        env = {**env, "Q_WORKERS": str(workers), "WORKER_HOSTNAME": name}
        super().__init__(name, [sys.executable, "manage.py", "qcluster"], env, log_dir)
        self.workers = workers

    def wait_ready(self, timeout: float = 30.0) -> "Node":
        # Running: the sentinel has forked its workers, the monitor and the pusher.
        wait_for(
            lambda: len(self.descendants()) >= self.workers + 3 or not self.alive(),
            timeout=timeout,
            message=f"node {self.name} to start",
        )
        assert self.alive(), f"node {self.name} exited:\n{self.log()}"
        return self


class WebServer(Process):
    """gunicorn serving config.wsgi on a free local port, one sync worker."""

    def __init__(self, *, env: dict, log_dir: Path):
        self.port = free_port()
        args = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1"]
        super().__init__("web", args, env, log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> "WebServer":
        def answers():
            try:
                return httpx.get(f"{self.url}/accounts/login/", timeout=2).status_code == 200
            except httpx.TransportError:
                assert self.alive(), f"web server exited:\n{self.log()}"
                return False

        wait_for(answers, timeout=timeout, interval=0.2, message="the web server to answer")
        return self


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def elapsed(since: float) -> float:
    return time.monotonic() - since
