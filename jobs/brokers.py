"""django-q2 brokers that also keep jobs moving.

Every qcluster has exactly one pusher process, and it calls `dequeue()` in a loop. These
brokers use that loop to dispatch retries whose delay has passed (every
JOBS["DISPATCH_INTERVAL"] seconds) and to take back jobs of dead workers and re-enqueue
lost ones (every JOBS["SWEEP_INTERVAL"]). So a retry starts within about a second of
its due time (django-q2's own scheduler only ticks every 30 s), and every qcluster node
does this work without an extra process to deploy. Several nodes doing it at once is
safe: each change is a conditional UPDATE that only one of them wins.
"""

import logging
import time

from django.conf import settings
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis

logger = logging.getLogger(__name__)


class JobDispatchMixin:
    _next_dispatch = 0.0
    _next_sweep = 0.0

    def dequeue(self):
        self.dispatch_jobs()
        return super().dequeue()

    def dispatch_jobs(self) -> None:
        from jobs.manager import job_manager

        now = time.monotonic()
        try:
            if now >= self._next_dispatch:
                self._next_dispatch = now + settings.JOBS["DISPATCH_INTERVAL"]
                job_manager.dispatch_due_retries(broker=self)
            if now >= self._next_sweep:
                self._next_sweep = now + settings.JOBS["SWEEP_INTERVAL"]
                job_manager.recover_stale_jobs()
                job_manager.requeue_lost_jobs(broker=self)
        except Exception:
            # Never let this take the pusher down; the next tick tries again.
            logger.exception("job dispatch failed")


class ORMBroker(JobDispatchMixin, ORM):
    pass


class RedisBroker(JobDispatchMixin, Redis):
    pass
