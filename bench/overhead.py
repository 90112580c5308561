"""Figure 1: jobs per second through one cluster, bare django-q2 against monitored jobs.

The judged baseline is bare django-q2 as its documentation sets it up (phase
"overhead_documented", on bench.documented_settings). The project's phase runs bare tasks
and monitored jobs on the same cluster (the project's Q_CLUSTER settings, 2 workers):
bare on those tuned settings is shown beside the judged ratio, as what monitoring costs
on equal footing. Enqueue is included: the clock starts before the first enqueue and
stops when the monitor process has seen the N-th task finish. Runs alternate (bare,
monitored, monitored, bare, …) so drift on a shared machine hits both alike.
"""

import os
import time

from django.conf import settings
from django_q.brokers import get_broker
from django_q.tasks import async_task

from bench import cluster
from jobs.testing import running_cluster


def enqueue_bare(n: int) -> None:
    # As django-q2's documentation shows it: no broker passed, default options.
    for _ in range(n):
        async_task("bench.tasks.noop")


def enqueue_monitored(n: int) -> None:
    from jobs.manager import job_manager

    for _ in range(n):
        job_manager.submit_job("bench.noop")


MODES = {"bare": enqueue_bare, "monitored": enqueue_monitored}


def measure(mode: str, n: int, meter: cluster.CpuMeter) -> dict:
    cluster.finished.value = 0
    meter.start()
    started = time.perf_counter()
    MODES[mode](n)
    enqueued = time.perf_counter()
    ended = cluster.wait_finished(n, meter=meter)
    cpu = meter.stop()
    return {
        "n": n,
        "seconds": ended - started,
        "enqueue_seconds": enqueued - started,
        "per_s": n / (ended - started),
        "cpu_ms_per_job": {part: seconds * 1000 / n for part, seconds in cpu.items()},
    }


def run(*, n: int = 2000, reps: int = 1, warmup: int = 40, modes: tuple[str, ...] = tuple(MODES)) -> dict:
    """`reps` runs of `n` tasks of each mode on one cluster of the current settings."""
    broker = get_broker()
    broker.purge_queue()
    if "monitored" in modes:
        from jobs.models import Job

        Job.objects.filter(job_type="bench.noop").delete()  # a previous broker's runs
    runs = {mode: [] for mode in modes}
    with running_cluster() as running:
        meter = cluster.CpuMeter(running.sentinel.pid, settings.DATABASES["default"]["NAME"])
        for mode in modes:  # connections, imports and caches of every process warmed up for both
            measure(mode, warmup, meter)
        for rep in range(reps):
            order = list(modes) if rep % 2 == 0 else list(reversed(modes))
            for mode in order:
                runs[mode].append(measure(mode, n, meter))
    return {
        "broker": "Redis" if "redis" in settings.Q_CLUSTER else "ORM",
        "workers": settings.Q_CLUSTER["workers"],
        "settings": os.environ["DJANGO_SETTINGS_MODULE"],
        "conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE", 0),
        "runs": runs,
        "checks": checks() if "monitored" in modes else {},
    }


def checks() -> dict:
    """What the monitored runs left behind: every job completed, with its five events."""
    from django.db.models import Count
    from django_q.models import Task

    from jobs.models import Job, JobStatus
    from monitoring.models import JobExecutionLog

    jobs = Job.objects.filter(job_type="bench.noop")
    events = (
        JobExecutionLog.objects.filter(job__job_type="bench.noop")
        .values("event_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {
        "jobs": jobs.count(),
        "not_completed": jobs.exclude(status=JobStatus.COMPLETED).count(),
        "events": {row["event_type"]: row["n"] for row in events},
        "failed_tasks": Task.objects.filter(success=False).count(),
    }
