"""A real django-q2 cluster started from the benchmark process, and a finished-task counter.

The counter is a shared integer incremented by django-q2's `post_execute` signal in the
cluster's monitor process (the receiver is connected before the fork). It adds no work
to the tasks themselves, so the bare baseline stays bare.
"""

import multiprocessing
import os
import signal
import time
from contextlib import contextmanager

from django.db import connections
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


def wait_finished(count: int, timeout: float = 600.0, poll: float = 0.005) -> float:
    """Wait until `count` tasks have finished since the counter was last reset; returns the time it happened."""
    deadline = time.perf_counter() + timeout
    while finished.value < count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {finished.value} of {count} tasks finished in {timeout:.0f}s")
        time.sleep(poll)
    return time.perf_counter()


@contextmanager
def running_cluster():
    """The project's cluster (settings.Q_CLUSTER) with its sentinel, pusher, monitor and workers."""
    from django_q.brokers import get_broker
    from django_q.cluster import Cluster

    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    connections.close_all()  # forked processes must open their own connections
    cluster = Cluster(get_broker())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(peak, current) resident memory of a process in MB, from /proc (VmHWM, VmRSS)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0]) / 1024  # kB
    return values["VmHWM"], values["VmRSS"]
