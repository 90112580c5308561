"""What the benchmark measures a cluster (jobs.testing.running_cluster) with: a finished-task
counter, the worker processes it spawned, and the CPU time of each part.

The counter is a shared integer incremented by django-q2's `post_execute` signal in the
cluster's monitor process (the receiver is connected before the fork). It adds no work
to the tasks themselves, so the bare baseline stays bare.
"""

import multiprocessing
import os
import time

import psutil
from django_q.signals import post_execute, post_spawn

finished = multiprocessing.Value("q", 0)
worker_pids = multiprocessing.Array("q", 16)


def _count_finished(sender, task, **kwargs):
    with finished.get_lock():
        finished.value += 1


def _note_worker(sender, proc_name, **kwargs):
    with worker_pids.get_lock():
        for i, pid in enumerate(worker_pids):
            if pid == 0:
                worker_pids[i] = os.getpid()
                return


post_execute.connect(_count_finished, dispatch_uid="bench.count_finished")
post_spawn.connect(_note_worker, dispatch_uid="bench.note_worker")


def spawned_workers() -> list[int]:
    return [pid for pid in worker_pids if pid]


def wait_finished(count: int, timeout: float = 600.0, poll: float = 0.005, meter=None) -> float:
    """Wait until `count` tasks have finished since the counter was last reset; returns the time it happened."""
    deadline = time.perf_counter() + timeout
    next_sample = 0.0
    while finished.value < count:
        now = time.perf_counter()
        if now > deadline:
            raise TimeoutError(f"only {finished.value} of {count} tasks finished in {timeout:.0f}s")
        if meter and now >= next_sample:
            meter.sample()
            next_sample = now + 0.2
        time.sleep(poll)
    return time.perf_counter()


def _cpu(process: psutil.Process, *, reaped_children: bool = False) -> float:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0.0
    total = times.user + times.system
    return total + (times.children_user + times.children_system if reaped_children else 0.0)


class CpuMeter:
    """CPU seconds spent while something runs, per part of the system: this process (the
    enqueuing side), the cluster (sentinel, pusher, monitor and workers, recycled ones
    included) and the Postgres backends of the benchmark database.

    On a shared machine wall time depends on everyone else; CPU time per job does not.
    """

    def __init__(self, sentinel_pid: int, database: str):
        self.sentinel = psutil.Process(sentinel_pid)
        self.database = database
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def _cluster(self) -> float:
        # Everything the sentinel's tree used: itself, its reaped children, its live ones.
        live = sum(_cpu(child) for child in self.sentinel.children(recursive=True))
        return _cpu(self.sentinel, reaped_children=True) + live

    def _backends(self) -> dict[int, float]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database])
            pids = [pid for (pid,) in cursor.fetchall()]
        cpu = {}
        for pid in pids:
            try:
                cpu[pid] = _cpu(psutil.Process(pid))
            except psutil.NoSuchProcess:  # a backend that ended since the query (one per task, bare django-q2)
                continue
        return cpu

    def start(self) -> None:
        self.started = {"enqueue": _cpu(psutil.Process()), "cluster": self._cluster()}
        self.first = self._backends()
        self.last = dict(self.first)

    def sample(self) -> None:
        for pid, cpu in self._backends().items():
            self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def stop(self) -> dict[str, float]:
        self.sample()
        return {
            "enqueue": _cpu(psutil.Process()) - self.started["enqueue"],
            "cluster": self._cluster() - self.started["cluster"],
            "postgres": sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items()),
        }


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(peak, current) resident memory of a process in MB, from /proc (VmHWM, VmRSS)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0]) / 1024  # kB
    return values["VmHWM"], values["VmRSS"]
