"""Monitoring writes that outlive a database outage.

When the database is unreachable, a job keeps running and its events wait here, in
order, to be written as soon as it answers again. Nothing is dropped silently: each
write kept or dropped is logged with what it was.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def reset_broken_connection() -> None:
    """Drop a connection that failed so the next query opens a fresh one."""
    try:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
    except DATABASE_UNAVAILABLE:
        connection.close()


class PendingWrites:
    def __init__(self, limit: int = 10_000):
        self.limit = limit
        self.dropped = 0
        self._ops: deque[tuple[Callable, str, float]] = deque()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._ops)

    def run(self, op: Callable, description: str):
        """Run `op` now, after any earlier writes still waiting; keep it if the database is down.

        Returns what `op` returned, or None when it was kept for later.
        """
        with self._lock:
            if self._ops and not self._flush_locked():
                self._keep(op, description, "earlier writes are still waiting")
                return None
            try:
                return op()
            except DATABASE_UNAVAILABLE as e:
                reset_broken_connection()
                self._keep(op, description, str(e).strip())
                return None

    def flush(self) -> bool:
        """Write what is waiting; True when nothing is left."""
        with self._lock:
            return self._flush_locked()

    def flush_patiently(self, deadline_seconds: float, sleep=time.sleep) -> bool:
        """Keep trying with backoff for a while (the end of a job, before the worker moves on)."""
        deadline = time.monotonic() + deadline_seconds
        pause = 0.25
        while not self.flush():
            if time.monotonic() + pause > deadline:
                logger.error("database still unavailable: %d monitoring writes kept in memory", len(self._ops))
                return False
            sleep(pause)
            pause = min(pause * 2, 5.0)
        return True

    def _flush_locked(self) -> bool:
        while self._ops:
            op, description, since = self._ops[0]
            try:
                op()
            except DATABASE_UNAVAILABLE:
                reset_broken_connection()
                return False
            except Exception:
                # Not an outage: retrying will not help, so say what is lost.
                logger.exception("monitoring write failed and was dropped: %s", description)
                self.dropped += 1
            else:
                logger.info("monitoring write recovered after %.1fs: %s", time.monotonic() - since, description)
            self._ops.popleft()
        return True

    def _keep(self, op: Callable, description: str, reason: str) -> None:
        if len(self._ops) >= self.limit:
            _, oldest, _ = self._ops.popleft()
            self.dropped += 1
            logger.error("monitoring buffer full (%d): dropped %s", self.limit, oldest)
        self._ops.append((op, description, time.monotonic()))
        logger.warning("database unavailable (%s); kept for later: %s", reason, description)
