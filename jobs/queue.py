"""Handing job attempts to django-q2."""

import logging
import multiprocessing
import os
import sys

import psutil
from django_q.brokers import Broker, get_broker
from django_q.cluster import Sentinel
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

_broker: tuple[int, Broker] | None = None


def shared_broker() -> Broker:
    """One broker per process: django-q2 would otherwise build (and connect) one per task."""
    global _broker
    if _broker is None or _broker[0] != os.getpid():
        _broker = (os.getpid(), get_broker())
    return _broker[1]


def enqueue_attempt(
    job_id, attempt: int, *, job_type: str, timeout: int, broker: Broker | None = None, urgent: bool = False
) -> str:
    """`urgent`: ahead of the jobs waiting (a task handed back by a stopping node was at the
    queue's head already)."""
    # Options go through q_options: async_task would swallow keyword arguments named
    # timeout, hook, group… as its own.
    options = {"timeout": timeout, "task_name": f"{job_type}:{job_id}:{attempt}"}
    if urgent:
        return enqueue_urgent("jobs.tasks.run_job", str(job_id), attempt, q_options=options)
    options["broker"] = broker or shared_broker()
    return async_task("jobs.tasks.run_job", str(job_id), attempt, q_options=options)


class _UrgentLane:
    """The shared broker as async_task sees it, enqueuing on the broker's urgent lane."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.list_key = broker.urgent_key

    def enqueue(self, task) -> int:
        return self.broker.enqueue_urgent(task)


def enqueue_urgent(func: str, *args, q_options: dict) -> str:
    """async_task, ahead of every job waiting in the queue (jobs.brokers: the urgent lane)."""
    broker = shared_broker()
    lane = _UrgentLane(broker) if hasattr(broker, "enqueue_urgent") else broker  # django-q2's own brokers
    return async_task(func, *args, q_options={**q_options, "broker": lane})


# (this process's pid, the django-q2 Sentinel it was forked from, that sentinel's pid), per process
_node: tuple[int, Sentinel | None, int] | None = None


def node_stopping() -> bool:
    """Whether this worker's qcluster node is stopping: told to (SIGTERM: a deploy, a
    scale-down), or its main process gone (node_stopping_or_orphaned).

    django-q2's workers then still run every task their node took from the broker ahead of
    time (up to Q_CLUSTER's queue_limit, workers², and one in the pusher's hand), each one
    starting after the stop was asked for; jobs.tasks.run_job hands those back instead. Read
    from the node's own stop event, which its signal handler sets at once: an earlier version
    read the status the sentinel saves, at most once a second, and a CI run saw two tasks start
    in that second. False outside a cluster's worker (tests, sync mode).
    """
    global _node
    if multiprocessing.parent_process() is None:
        return False
    if _node is None or _node[0] != os.getpid():  # first look in this (forked) worker
        _node = (os.getpid(), inherited_sentinel(), os.getppid())
        if _node[1] is None:
            logger.warning("no django-q2 sentinel on this worker's stack: it cannot see its node stopping")
    _, sentinel, sentinel_pid = _node
    return sentinel is not None and node_stopping_or_orphaned(sentinel, sentinel_pid)


def node_stopping_or_orphaned(sentinel: Sentinel, sentinel_pid: int) -> bool:
    """Whether the node `sentinel` guards is stopping, as node_stopping says; when its main
    process is gone (SIGKILL, the OOM killer), this first sets the stop event as the main
    process's SIGTERM handler would, so the sentinel stops the node and its workers hand back
    what they took ahead. django-q2's sentinel never looks at its parent: a drill saw a node's
    sentinel, pusher and workers start 6 more attempts after its main process was killed, and
    live on once the queue was empty, beside the node a service manager would restart. Called
    by each worker before a task and by the pusher's dispatch thread (jobs.brokers) when idle.
    """
    if sentinel.stop_event.is_set():
        return True
    try:
        # The main process is the sentinel's parent while it lives; orphaned, the sentinel is
        # given another one.
        orphaned = psutil.Process(sentinel_pid).ppid() != sentinel.parent_pid
    except psutil.Error:  # the sentinel itself is gone: nobody is left to stop the node
        return False
    if orphaned:
        logger.error("the qcluster main process %s is gone: stopping its node", sentinel.parent_pid)
        sentinel.stop_event.set()
    return orphaned


def inherited_sentinel() -> Sentinel | None:
    """The django-q2 Sentinel this process (a worker, the pusher) was forked from, if any.

    django-q2 forks each from its sentinel, in the middle of Sentinel.spawn_process (or
    reincarnate), so the sentinel is still on the stack of this process's main thread."""
    frame = sys._getframe()
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, Sentinel):
            return owner
        frame = frame.f_back
    return None
