from django.core.management.base import BaseCommand, CommandError

from jobs import clock
from monitoring.retention import prune_monitoring, retention_cutoffs


class Command(BaseCommand):
    help = "Delete monitoring rows older than their retention (RETENTION_*_DAYS; submits' idempotency keys: 24 h)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
        parser.add_argument("--batch-size", type=int, default=None, help="rows per DELETE (RETENTION_BATCH_SIZE)")

    def handle(self, dry_run=False, batch_size=None, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        now = clock.now()
        cutoffs = retention_cutoffs(now)
        counts = prune_monitoring(now=now, batch_size=batch_size, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for table, count in counts.items():
            if cutoffs[table] is None:
                self.stdout.write(f"{table}: kept whole (retention 0 days)")
            else:
                self.stdout.write(f"{table}: {verb} {count} rows older than {cutoffs[table]:%Y-%m-%d %H:%M} UTC")
