"""Handing job attempts to django-q2."""

import logging
import multiprocessing
import os
import sys

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


_stop_event: tuple[int, object | None] | None = None  # (pid, its node's stop event), per process


def node_stopping() -> bool:
    """Whether this worker's qcluster node was told to stop (SIGTERM: a deploy, a scale-down).

    django-q2's workers then still run every task their node took from the broker ahead of
    time (up to Q_CLUSTER's queue_limit, workers², and one in the pusher's hand), each one
    starting after the stop was asked for; jobs.tasks.run_job hands those back instead. Read
    from the node's own stop event, which its signal handler sets at once: an earlier version
    read the status the sentinel saves, at most once a second, and a CI run saw two tasks start
    in that second. False outside a cluster's worker (tests, sync mode).
    """
    global _stop_event
    if multiprocessing.parent_process() is None:
        return False
    if _stop_event is None or _stop_event[0] != os.getpid():  # first look in this (forked) worker
        _stop_event = (os.getpid(), _inherited_stop_event())
    event = _stop_event[1]
    return event is not None and event.is_set()


def _inherited_stop_event():
    """The stop event of the django-q2 Sentinel this worker was forked from: a multiprocessing
    Event shared with the node's main process, whose SIGTERM handler sets it."""
    sentinel = inherited_sentinel()
    if sentinel is None:
        logger.warning("no django-q2 sentinel on this worker's stack: it cannot see its node stopping")
        return None
    return sentinel.stop_event


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
