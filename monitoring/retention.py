"""Retention: job_execution_logs and system_health_metrics would otherwise grow forever; submits'
idempotency keys (job_idempotency_keys) go once past the 24 hours they are answered for.

Rows older than settings.RETENTION_DAYS[table] days go, the oldest first, in batches of
RETENTION_BATCH_SIZE, each its own short transaction, so writers never wait on a long delete.
Several nodes pruning at once (two schedules, cron) share the work: a batch skips the rows
another prune has locked (a drill found two prunes deadlocking on system_health_metrics,
each deleting rows the other had locked), and each goes on until nothing is due.

A job's events go together, once the job finished before the cutoff: never those of a job
still queued, running or retrying (a paused type, a slow retry: a drill found jobs 17 days
queued left with no event), never half a timeline, and never those of a job an open alert
points to (its traceback is in them, while the incident is open).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from alerts.models import AlertHistory, AlertOccurrence
from jobs import clock
from jobs.idempotency import IDEMPOTENCY_KEY_TTL
from jobs.models import IdempotencyKey
from monitoring.models import JobExecutionLog, SystemHealthMetric

logger = logging.getLogger(__name__)

PRUNED_TABLES = {
    "job_execution_logs": JobExecutionLog,
    "system_health_metrics": SystemHealthMetric,
    "job_idempotency_keys": IdempotencyKey,  # kept IDEMPOTENCY_KEY_TTL, not a setting's days
}
# Each table's time column (its index serves the batches' ORDER BY).
TIME_FIELDS = {"job_idempotency_keys": "created_at"}


def retention_cutoffs(now: datetime | None = None) -> dict[str, datetime | None]:
    """{table: rows older than this go}, None where the table is kept whole (0 days)."""
    now = now or clock.now()
    cutoffs = {}
    for table in PRUNED_TABLES:
        if table == "job_idempotency_keys":
            # A key is answered for IDEMPOTENCY_KEY_TTL only; past it, it is dead weight.
            cutoffs[table] = now - IDEMPOTENCY_KEY_TTL
            continue
        days = settings.RETENTION_DAYS.get(table, 0)
        cutoffs[table] = now - timedelta(days=days) if days and days > 0 else None
    return cutoffs


def events_pruned(job, now: datetime | None = None) -> bool:
    """Whether retention deletes (or has deleted) the job's events: it finished before their cutoff."""
    cutoff = retention_cutoffs(now)["job_execution_logs"]
    return job.finished_at is not None and cutoff is not None and job.finished_at < cutoff


def earlier_events_pruned(first_event_at: datetime, attempts, now: datetime | None = None) -> bool:
    """Whether retention deleted the events before `first_event_at`, the job's earliest left: an
    attempt of it ended before that and before the cutoff. The job had finished then, its events
    went, and an operator retried it since: its timeline starts at the retry."""
    cutoff = retention_cutoffs(now)["job_execution_logs"]
    return cutoff is not None and any(
        attempt.completed_at is not None and attempt.completed_at < min(first_event_at, cutoff) for attempt in attempts
    )


def prune_monitoring(
    *, now: datetime | None = None, batch_size: int | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Delete what retention no longer keeps; {table: rows deleted (or, dry_run, that would be)}."""
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    counts = {}
    for table, cutoff in retention_cutoffs(now).items():
        if cutoff is None:
            counts[table] = 0
            continue
        old = _prunable(table, cutoff)
        counts[table] = old.count() if dry_run else _delete_in_batches(old, batch_size, _time_field(table))
        if counts[table] and not dry_run:
            logger.info("retention: deleted %d rows of %s older than %s", counts[table], table, cutoff)
    return counts


def _prunable(table: str, cutoff: datetime):
    rows = PRUNED_TABLES[table].objects.filter(**{f"{_time_field(table)}__lt": cutoff})
    if table != "job_execution_logs":
        return rows
    open_alerts = AlertHistory.objects.filter(resolved_at__isnull=True)
    return (
        rows.filter(job__finished_at__lt=cutoff)
        .exclude(job_id__in=open_alerts.filter(job_id__isnull=False).values("job_id"))
        .exclude(job_id__in=AlertOccurrence.objects.filter(alert__in=open_alerts).values("job_id"))
    )


def _time_field(table: str) -> str:
    return TIME_FIELDS.get(table, "timestamp")


def _delete_in_batches(old, batch_size: int, time_field: str) -> int:
    deleted = 0
    model = old.model
    while True:
        # DELETE … WHERE id IN (the oldest batch): served by the table's time index. The
        # batch locks its rows as it picks them, skipping those another prune holds: two prunes
        # never wait on each other's rows, nor lock them in opposite orders (a deadlock).
        batch = old.order_by(time_field).select_for_update(skip_locked=True, of=("self",)).values("id")[:batch_size]
        with transaction.atomic():
            count, _ = model.objects.filter(id__in=batch).delete()
        deleted += count
        # Until a batch finds nothing: one cut short by another node's prune (rows it deleted
        # first) does not mean nothing is left.
        if count == 0:
            return deleted
