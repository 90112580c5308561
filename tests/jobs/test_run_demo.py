"""`make run`'s command (manage.py run_demo): stopping it leaves no process behind."""

import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import psutil
import pytest

from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from tests.conftest import wait_for
from tests.reliability.nodes import BASE_DIR, free_port, process_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


@contextmanager
def demo_with_a_long_job_running(tmp_path, stop_grace: float, watchdog_interval: float = 0):
    """run_demo started, a two-minute job running in its cluster: yields (run_demo, every process it started)."""
    log = open(tmp_path / "run_demo.log", "wb")
    started = []
    args = [
        sys.executable,
        "manage.py",
        "run_demo",
        f"--addr=127.0.0.1:{free_port()}",
        "--interval=0",
        f"--watchdog-interval={watchdog_interval}",
    ]
    demo = subprocess.Popen(
        [*args, f"--stop-grace={stop_grace}"],
        cwd=BASE_DIR,
        env=process_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        # As a terminal starts it: a test run started in the background (`pytest &`) has SIGINT
        # ignored, and its children would inherit that and never see a Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        job = job_manager.submit_job("demo.sleep", {"seconds": 120, "steps": 2})
        wait_for(lambda: Job.objects.get(id=job.id).status == JobStatus.RUNNING, timeout=60, message="the job to start")
        started += [p.pid for p in psutil.Process(demo.pid).children(recursive=True)]
        assert len(started) >= 4  # runserver, qcluster and the cluster's own processes
        yield demo, started
    finally:
        if demo.poll() is None:
            demo.kill()
        for pid in alive(started):  # what a failing run left behind
            psutil.Process(pid).kill()
        log.close()
        print((tmp_path / "run_demo.log").read_text(errors="replace")[-3000:])


def test_stopping_the_demo_while_a_job_runs_past_the_grace_period_ends_every_process_it_started(tmp_path):
    with demo_with_a_long_job_running(tmp_path, stop_grace=1) as (demo, started):
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)

        # The cluster's worker was busy for two more minutes: it was killed, not waited for.
        wait_for(lambda: not alive(started), timeout=10, message=f"{alive(started)} to end")


def test_a_second_ctrl_c_during_the_grace_period_stops_everything_at_once(tmp_path):
    with demo_with_a_long_job_running(tmp_path, stop_grace=60) as (demo, started):
        demo.send_signal(signal.SIGINT)
        # The second once it says it waits for the running job, not after a guessed second.
        wait_for(lambda: b"Stopping: running jobs get up to 60 s to finish" in (tmp_path / "run_demo.log").read_bytes())
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=15)

        wait_for(lambda: not alive(started), timeout=10, message=f"{alive(started)} to end")


def test_the_demo_runs_the_cluster_watchdog_as_cron_would(tmp_path):
    """A reviewer froze the demo's cluster for three minutes and no alert came: `make run` had no
    cron to run `cluster_watchdog`. The demo runs it every minute (every second here)."""
    with demo_with_a_long_job_running(tmp_path, stop_grace=1, watchdog_interval=1) as (demo, started):
        # The running job's heartbeat shows a worker alive.
        wait_for(
            lambda: b"alive: a worker was last seen" in (tmp_path / "run_demo.log").read_bytes(),
            timeout=30,
            message="cluster_watchdog to report in the demo's log",
        )
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
        wait_for(lambda: not alive(started), timeout=10, message=f"{alive(started)} to end")


def test_the_demos_web_server_keeps_no_database_connection_per_request_it_answered(tmp_path, postgres_only):
    """Drill: runserver answers each request in a thread of its own, each kept its connection
    (DB_CONN_MAX_AGE): 30 parallel requests left 30 Postgres connections open, and a drill's
    bursts took 70 of the server's 100."""
    with demo_with_a_long_job_running(tmp_path, stop_grace=1) as (demo, started):
        (web,) = [p for p in psutil.Process(demo.pid).children() if "runserver" in p.cmdline()]
        addr = web.cmdline()[web.cmdline().index("runserver") + 1]

        def postgres_connections() -> int:
            return len([c for c in web.net_connections(kind="tcp") if c.raddr and c.raddr.port == 5432])

        def ask(_):  # a token the server looks up in the database
            return httpx.get(f"http://{addr}/api/monitoring/jobs", headers={"Authorization": "Bearer jm_x"}).status_code

        def listening() -> bool:
            host, port = addr.rsplit(":", 1)
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
            except OSError:
                return False
            return True

        # The job running says the cluster is up, not the web server: on a loaded machine (CI beside a
        # demo) the first requests were refused before runserver listened.
        wait_for(listening, timeout=30, message=f"runserver listening on {addr}")
        with ThreadPoolExecutor(max_workers=10) as pool:
            assert set(pool.map(ask, range(20))) == {401}

        wait_for(lambda: postgres_connections() == 0, timeout=5, message=f"{postgres_connections()} connections left")
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
