"""`make run`: the web server and a django-q2 cluster, fed a steady mix of demo jobs."""

import os
import random
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from jobs.manager import job_manager


def random_demo_job(rng: random.Random) -> tuple[str, dict]:
    # demo.fail one job in ten: with three in ten, 36-39 % of attempts failed, and the Health page's
    # failure rate stayed "warning" for good.
    kind = rng.choices(["demo.sleep", "ai_matching", "demo.fail"], weights=[6, 3, 1])[0]
    if kind == "demo.sleep":
        return kind, {"seconds": rng.randint(2, 12), "steps": rng.randint(4, 12)}
    if kind == "ai_matching":
        return kind, {
            "candidate_ids": rng.sample(range(1, 100_000), rng.randint(20, 400)),
            "job_posting_id": rng.randint(1, 500),
        }
    error_class = rng.choices(["transient", "configuration", "data", "system"], weights=[5, 1, 2, 1])[0]
    return kind, {"error_class": error_class, "fail_times": rng.randint(0, 3)}


class Command(BaseCommand):
    help = "Start the web server and a django-q2 cluster, and keep submitting demo jobs."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--interval", type=float, default=2.5, help="seconds between demo jobs (0: none)")
        parser.add_argument(
            "--stop-grace",
            type=float,
            default=30,
            help="seconds running jobs get to finish on stop; then all is killed",
        )
        parser.add_argument(
            "--watchdog-interval",
            type=float,
            default=60,
            help="seconds between runs of cluster_watchdog, as cron runs it in production (0: none)",
        )

    def handle(self, addr, interval, stop_grace, watchdog_interval, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # Each child in its own session, so a Ctrl-C reaches only this process, which then sends
        # every child exactly one SIGTERM: django-q2's cluster deadlocks in its signal handler
        # when a second signal arrives while it handles the first (Ctrl-C's SIGINT to the whole
        # process group plus our SIGTERM would do just that).
        children = [
            # runserver answers each request in a thread of its own: a kept connection per thread
            # (DB_CONN_MAX_AGE) held one Postgres connection per request ever run at once, and a
            # drill's 30 parallel requests kept 30 (70 at its peak, Postgres refusing clients).
            subprocess.Popen(
                [*manage, "runserver", addr, "--noreload"],
                start_new_session=True,
                env={**os.environ, "DB_CONN_MAX_AGE": "0"},
            ),
            subprocess.Popen([*manage, "qcluster"], start_new_session=True),
        ]
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.stdout.write(self.style.SUCCESS(f"Dashboard: http://{addr}/   (Ctrl-C stops everything)"))
        rng = random.Random()
        # The dead man's switch, in its own process as cron would start it: a cluster that hangs
        # or dies in the demo raises its alert too.
        watchdog, next_watch = None, time.monotonic() + watchdog_interval
        try:
            while all(child.poll() is None for child in children):
                if interval:
                    job_type, parameters = random_demo_job(rng)
                    job_manager.submit_job(job_type, parameters, submitted_by="demo")
                if watchdog_interval and time.monotonic() >= next_watch:
                    next_watch += watchdog_interval
                    if watchdog is None or watchdog.poll() is not None:  # the last run is over
                        watchdog = subprocess.Popen([*manage, "cluster_watchdog"])
                time.sleep(interval or 1)
        except KeyboardInterrupt:
            pass
        finally:
            if watchdog is not None and watchdog.poll() is None:
                watchdog.kill()  # it holds no job; it may be waiting on a broker that does not answer
                watchdog.wait()
            for child in children:
                child.terminate()
            deadline = time.monotonic() + stop_grace
            try:
                self.stdout.write(f"Stopping: running jobs get up to {stop_grace:g} s to finish (Ctrl-C again: now).")
                self.stdout.flush()
                for child in children:
                    try:
                        child.wait(timeout=max(0.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        pass
            except (KeyboardInterrupt, SystemExit):
                pass  # a second Ctrl-C or SIGTERM while running jobs finish: stop waiting
            for received in (signal.SIGINT, signal.SIGTERM):
                signal.signal(received, signal.SIG_IGN)  # nothing may interrupt the cleanup
            for child in children:
                # Each child leads its own process group: end what it forked too (the cluster's
                # sentinel and workers, still busy with a job), not only the child itself.
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                child.wait()
