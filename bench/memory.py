"""Figure 5: peak resident memory of a worker after 10,000 monitored jobs against after 100.

One worker (Q_WORKERS=1) with `recycle` set above the number of jobs (bench.__main__ sets
Q_RECYCLE), so a single process runs every job; its peak RSS (VmHWM) is read from /proc.
"""

import time

from django.conf import settings

from bench import cluster
from bench.report import judged, mb
from jobs.manager import job_manager
from jobs.testing import running_cluster

TARGET = "<= 1.10"
CHECKPOINTS = (100, 1000, 2500, 5000, 10_000)


def run(*, jobs: int = 10_000, batch: int = 500) -> dict:
    checkpoints = [c for c in CHECKPOINTS if c < jobs] + [jobs]
    samples = []
    cluster.finished.value = 0
    started = time.perf_counter()
    with running_cluster():
        submitted = 0
        for checkpoint in checkpoints:
            while submitted < checkpoint:
                count = min(batch, checkpoint - submitted)
                for _ in range(count):
                    job_manager.submit_job("bench.noop")
                submitted += count
            cluster.wait_finished(checkpoint)
            pids = cluster.spawned_workers()
            peak, current = cluster.peak_rss_mb(pids[0])
            samples.append({"jobs": checkpoint, "peak_mb": peak, "rss_mb": current, "workers_spawned": len(pids)})
    return {
        "workers": settings.Q_CLUSTER["workers"],
        "recycle": settings.Q_CLUSTER["recycle"],
        "seconds": time.perf_counter() - started,
        "samples": samples,
    }


def rows(result: dict) -> list:
    first, last = result["samples"][0], result["samples"][-1]
    note = (
        f"{result['workers']} worker, recycle={result['recycle']}, so one process ran all {last['jobs']} jobs "
        f"(workers spawned: {last['workers_spawned']}); peak RSS "
        + ", ".join(f"{s['jobs']}: {s['peak_mb']:.1f}" for s in result["samples"])
    )
    row = judged(
        f"5. worker peak RSS, {last['jobs']} jobs vs {first['jobs']}",
        mb(first["peak_mb"]),
        mb(last["peak_mb"]),
        last["peak_mb"] / first["peak_mb"],
        TARGET,
        note,
    )
    if last["workers_spawned"] != 1:
        row.passed = False
        row.note += "; the worker was replaced during the run, so the figure is not one process's"
    return [row]
