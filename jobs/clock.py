"""The time a node writes into the shared tables: its own clock, set right by the database's.

Several nodes write the times of one job (its claim and its events on a worker, its retry on a
pusher, a sweep's verdict on another) and every page subtracts them. A node whose clock was two
minutes off made attempts end before they started, durations negative, live jobs "silent for
2 minutes", retries early or late, and its health readings hide newer ones (a drill). So each
process reads the database's clock now and then (Postgres; SQLite is on the node itself) and,
when its own is off by more than CLOCK_TOLERANCE, writes its own corrected by the difference and
logs a warning naming it: fix the node's time synchronisation (NTP).

Reading it never stops a job: if the database does not answer, the last known correction holds.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# Differences below this are the measure's own noise (a round trip) and NTP's: not corrected.
CLOCK_TOLERANCE = timedelta(seconds=1)
# How often a process reads the database's clock again (a clock set right is seen this late).
REMEASURE_EVERY_S = 60.0
DATABASE_TIME = "SELECT clock_timestamp()"

_offset = timedelta(0)
_measured_at: float | None = None  # time.monotonic(): a clock set right meanwhile does not fool it


def now() -> datetime:
    """This node's time, corrected to the database's clock when the two disagree."""
    if _measured_at is None or time.monotonic() - _measured_at >= REMEASURE_EVERY_S:
        _measure()
    return timezone.now() + _offset


def forget() -> None:
    """Measure again at the next now() (tests; a process that knows its clock was just set)."""
    global _measured_at, _offset
    _measured_at, _offset = None, timedelta(0)


def measure_offset() -> timedelta | None:
    """How far the database's clock is ahead of this node's, read now: None where it is not read
    (not Postgres: SQLite is on the node itself) or cannot be (no answer)."""
    if connection.vendor != "postgresql":
        return None
    try:
        before = timezone.now()
        # In a savepoint when the caller is in a transaction (an outcome, a claim): a read that
        # fails must not leave that transaction aborted, and the job's rows with it.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(DATABASE_TIME)
            (database_time,) = cursor.fetchone()
        after = timezone.now()
    except Exception as e:  # an outage, a broken transaction, an async context
        logger.debug("could not read the database's clock: %s", e)
        return None
    return database_time - (before + (after - before) / 2)


def describe(offset: timedelta) -> str:
    """'120.0 s ahead of' / '3.2 s behind': this node's clock against the database's."""
    seconds = offset.total_seconds()
    return f"{abs(seconds):.1f} s {'behind' if seconds > 0 else 'ahead of'}"


def _measure() -> None:
    global _measured_at, _offset
    _measured_at = time.monotonic()  # first: a database that does not answer is not asked at every call
    if not settings.JOBS["CLOCK_FROM_DATABASE"]:
        return
    measured = measure_offset()
    if measured is None:
        return  # keep the last correction: the job goes on
    if abs(measured) < CLOCK_TOLERANCE:
        _offset = timedelta(0)
        return
    _offset = measured
    logger.warning(
        "this node's clock is %s the database's: the times it writes are corrected by as much; "
        "fix its time synchronisation (NTP)",
        describe(measured),
    )
