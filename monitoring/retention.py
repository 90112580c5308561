"""Retention: job_execution_logs and system_health_metrics would otherwise grow forever.

Rows older than settings.RETENTION_DAYS[table] days go, the oldest first, in batches of
RETENTION_BATCH_SIZE, each its own short statement (autocommit), so writers never wait on
a long delete. Several nodes pruning at once is harmless: they delete disjoint or already
deleted rows.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from monitoring.models import JobExecutionLog, SystemHealthMetric

logger = logging.getLogger(__name__)

PRUNED_TABLES = {
    "job_execution_logs": JobExecutionLog,
    "system_health_metrics": SystemHealthMetric,
}


def retention_cutoffs(now: datetime | None = None) -> dict[str, datetime | None]:
    """{table: rows older than this go}, None where the table is kept whole (0 days)."""
    now = now or timezone.now()
    cutoffs = {}
    for table in PRUNED_TABLES:
        days = settings.RETENTION_DAYS.get(table, 0)
        cutoffs[table] = now - timedelta(days=days) if days and days > 0 else None
    return cutoffs


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
        old = PRUNED_TABLES[table].objects.filter(timestamp__lt=cutoff)
        counts[table] = old.count() if dry_run else _delete_in_batches(old, batch_size)
        if counts[table] and not dry_run:
            logger.info("retention: deleted %d rows of %s older than %s", counts[table], table, cutoff)
    return counts


def _delete_in_batches(old, batch_size: int) -> int:
    deleted = 0
    model = old.model
    while True:
        # DELETE … WHERE id IN (the oldest batch): served by the table's timestamp index.
        batch = old.order_by("timestamp").values("id")[:batch_size]
        count, _ = model.objects.filter(id__in=batch).delete()
        deleted += count
        if count < batch_size:
            return deleted
