"""Figure 1: jobs per second through one cluster, bare django-q2 against monitored jobs.

Both run on the same cluster (the project's Q_CLUSTER settings, 2 workers), enqueue
included: the clock starts before the first enqueue and stops when the monitor process
has seen the N-th task finish. Runs alternate (bare, monitored, monitored, bare, …) so
drift on a shared machine hits both alike.
"""

import time

from django.conf import settings
from django.db.models import Count
from django_q.brokers import get_broker
from django_q.models import Task
from django_q.tasks import async_task

from bench import cluster
from bench.report import info, judged, median, per_second
from jobs.manager import job_manager
from jobs.models import Job, JobStatus
from monitoring.models import EventType, JobExecutionLog

TARGET = ">= 0.9"


def enqueue_bare(n: int) -> None:
    # As django-q2's documentation shows it: no broker passed, default options.
    for _ in range(n):
        async_task("bench.tasks.noop")


def enqueue_monitored(n: int) -> None:
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


def run(*, n: int = 2000, reps: int = 1, warmup: int = 40) -> dict:
    broker = get_broker()
    broker.purge_queue()
    Job.objects.filter(job_type="bench.noop").delete()  # a previous broker's runs
    runs = {mode: [] for mode in MODES}
    with cluster.running_cluster() as running:
        meter = cluster.CpuMeter(running.sentinel.pid, settings.DATABASES["default"]["NAME"])
        for mode in MODES:  # connections, imports and caches of every process warmed up for both
            measure(mode, warmup, meter)
        for rep in range(reps):
            order = list(MODES) if rep % 2 == 0 else list(reversed(MODES))
            for mode in order:
                runs[mode].append(measure(mode, n, meter))
    return {
        "broker": type(broker).__name__,
        "workers": settings.Q_CLUSTER["workers"],
        "runs": runs,
        "checks": checks(),
    }


def _cpu_per_job(runs: list[dict]) -> dict[str, float]:
    return {part: median(r["cpu_ms_per_job"][part] for r in runs) for part in ("enqueue", "cluster", "postgres")}


def checks() -> dict:
    """What the monitored runs left behind: every job completed, with its five events."""
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


def rows(result: dict) -> list:
    label = result["broker"].removesuffix("Broker")
    bare = median(r["per_s"] for r in result["runs"]["bare"])
    ours = median(r["per_s"] for r in result["runs"]["monitored"])
    checked = result["checks"]
    progress = checked["events"].get(EventType.PROGRESS, 0)
    n = sum(r["n"] for r in result["runs"]["monitored"])
    note = (
        f"{len(result['runs']['bare'])} run(s) of {result['runs']['bare'][0]['n']} each, median; "
        f"{result['workers']} workers; {progress / max(checked['jobs'], 1):.1f} progress events written per job "
        f"of 10 reported"
    )
    problems = []
    if checked["not_completed"] or checked["failed_tasks"]:
        problems.append(f"{checked['not_completed']} jobs not completed, {checked['failed_tasks']} failed tasks")
    if checked["jobs"] < n:
        problems.append(f"only {checked['jobs']} of {n} jobs recorded")
    row = judged(f"1. throughput, {label} broker (b/a)", per_second(bare), per_second(ours), ours / bare, TARGET, note)
    if problems:
        row.passed = False
        row.note += "; " + "; ".join(problems)
    enqueue_bare = median(r["n"] / r["enqueue_seconds"] for r in result["runs"]["bare"])
    enqueue_ours = median(r["n"] / r["enqueue_seconds"] for r in result["runs"]["monitored"])
    cpu = {mode: _cpu_per_job(result["runs"][mode]) for mode in MODES}
    return [
        row,
        info(
            f"   CPU per job, {label} broker",
            f"{sum(cpu['bare'].values()):.2f} ms",
            f"{sum(cpu['monitored'].values()):.2f} ms",
            sum(cpu["monitored"].values()) / sum(cpu["bare"].values()),
            "enqueue / cluster / postgres: "
            + "; ".join(
                f"{mode} " + " / ".join(f"{cpu[mode][part]:.2f}" for part in ("enqueue", "cluster", "postgres"))
                for mode in MODES
            ),
        ),
        info(
            f"   enqueue only, {label} broker",
            f"{enqueue_bare:.0f} tasks/s",
            f"{enqueue_ours:.0f} jobs/s",
            enqueue_ours / enqueue_bare,
            "async_task() against submit_job(), while the cluster works",
        ),
    ]

