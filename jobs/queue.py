"""Handing job attempts to django-q2."""

import logging
import multiprocessing
import os
import time

from django_q.brokers import Broker, get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage
from django_q.status import Stat, Status
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


class _NodeState:
    """What this worker process knows of its qcluster node's status (jobs.queue.node_stopping)."""

    pid: int | None = None
    stat_key: str | None = None
    checked_at = float("-inf")
    stopping = False


_node = _NodeState()
NODE_CHECK_INTERVAL = 1.0  # seconds between two looks at the node's status, per worker


def node_stopping(clock=time.monotonic) -> bool:
    """Whether this worker's qcluster node was told to stop (SIGTERM: a deploy, a scale-down).

    django-q2's workers then still run every task their node took from the broker ahead of
    time (up to Q_CLUSTER's queue_limit, workers², and one in the pusher's hand), each one
    starting after the stop was asked for; jobs.tasks.run_job hands those back instead. Read
    from the status the node's sentinel saves (at once when told to stop, then every half
    second), at most once a second per worker; False outside a cluster's worker (tests, sync
    mode) and whenever the status cannot be read.
    """
    global _node
    if multiprocessing.parent_process() is None:
        return False
    if _node.pid != os.getpid():  # a worker forked after an earlier look (a reincarnation)
        _node = _NodeState()
        _node.pid = os.getpid()
    if _node.stopping:
        return True
    now = clock()
    if now - _node.checked_at < NODE_CHECK_INTERVAL:
        return False
    _node.checked_at = now
    try:
        status = _own_status(shared_broker())
    except Exception:
        logger.warning("could not read this node's status; running the task", exc_info=True)
        return False
    _node.stopping = status is not None and status.status == Conf.STOPPING
    return _node.stopping


def _own_status(broker: Broker) -> Status | None:
    """This worker's node's status: found once among all nodes' by its sentinel (this worker's
    parent), then read by its key."""
    if _node.stat_key is None:
        sentinel = os.getppid()
        found = next((stat for stat in Stat.get_all(broker) if getattr(stat, "sentinel", None) == sentinel), None)
        if found is None:
            return None
        _node.stat_key = Stat.get_key(found.cluster_id)
        return found
    pack = broker.get_stat(_node.stat_key)
    return SignedPackage.loads(pack) if pack else None
