"""Handing job attempts to django-q2."""

import logging
import os

from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

_broker: tuple[int, Broker] | None = None


def shared_broker() -> Broker:
    """One broker per process: django-q2 would otherwise build (and connect) one per task."""
    global _broker
    if _broker is None or _broker[0] != os.getpid():
        _broker = (os.getpid(), get_broker())
    return _broker[1]


def enqueue_attempt(job_id, attempt: int, *, job_type: str, timeout: int, broker: Broker | None = None) -> str:
    # Options go through q_options: async_task would swallow keyword arguments named
    # timeout, hook, group… as its own.
    return async_task(
        "jobs.tasks.run_job",
        str(job_id),
        attempt,
        q_options={
            "broker": broker or shared_broker(),
            "timeout": timeout,
            "task_name": f"{job_type}:{job_id}:{attempt}",
        },
    )


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
