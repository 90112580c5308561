"""A real django-q2 cluster started from the current process, for the tests and the benchmark."""

import signal
from contextlib import contextmanager

from django.db import connections


@contextmanager
def running_cluster(workers: int | None = None):
    """django-q2's cluster (sentinel, pusher, monitor and worker processes) on the current
    settings' database and broker; `workers` replaces Q_CLUSTER's number while it runs."""
    from django_q.brokers import get_broker
    from django_q.cluster import Cluster
    from django_q.conf import Conf

    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    previous_workers = Conf.WORKERS
    if workers is not None:
        Conf.WORKERS = workers
    connections.close_all()  # forked processes must open their own connections
    cluster = Cluster(get_broker())
    # django-q2's Cluster takes SIGINT to stop the cluster and nothing else, so a process in
    # this block would carry on (a benchmark phase waiting for tasks that no longer run, until
    # bench.__main__ kills it 30 s later). Ctrl-C raises KeyboardInterrupt again: the cluster
    # stops below and the process ends.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        Conf.WORKERS = previous_workers
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
