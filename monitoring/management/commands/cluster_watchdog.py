"""The dead man's switch of the django-q2 clusters, run by cron outside any cluster.

The health checks, the alert rules and the notification deliveries all run on the clusters:
when every cluster is down nothing runs them. This command needs none of them: it judges
from the database (monitoring.health.worker_liveness), raises or resolves the no-worker
alert through the AlertManager and, while no cluster runs, escalates what is due and sends
every due notification itself. The alert names the likely cause from what the broker says
(monitoring.health.broker_reading): no cluster registered, the broker unreachable, or
clusters registered but silent.

Workers alive but every one busy with long jobs starve the same work: the periodic tasks and
notifications wait in the queue for a free worker (a drill saw the checks 4-5 minutes late).
When the checks are overdue, this command runs them, escalates and delivers too.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from alerts.manager import alert_manager
from alerts.services import deliveries_send_due, take_back_lost_sends
from jobs import clock
from monitoring.health import broker_reading, checks_overdue, health_service, stale_after, worker_liveness
from monitoring.pending import DATABASE_UNAVAILABLE
from monitoring.templatetags.dashboard import duration

DEAD = 1
NOT_JUDGED = 2
DATABASE_DOWN = 3


def describe(liveness: dict, now) -> str:
    """One line for the cron log: when a worker was last seen, and what waits."""
    last_seen = liveness["last_seen_at"]
    seen = f"a worker was last seen {(now - last_seen).total_seconds():.0f}s ago" if last_seen else "no worker seen yet"
    if liveness["queued"]:
        queued = ngettext("%d job queued", "%d jobs queued", liveness["queued"]) % liveness["queued"]
        line = f"{seen}; {queued} since {liveness['oldest_queued_at']:%Y-%m-%d %H:%M:%S} UTC"
    else:
        line = f"{seen}; no job queued"
    broker = liveness.get("broker")
    if broker is None:
        return line
    if not broker["reachable"]:
        return f"{line}; the broker ({broker['broker']}) does not answer: {broker['error']}"
    clusters = ngettext("%d cluster", "%d clusters", len(broker["clusters"])) % len(broker["clusters"])
    return f"{line}; {clusters} registered with the broker ({broker['broker']})"


class Command(BaseCommand):
    help = (
        "Check from the database that a django-q2 worker is alive (run it every minute from cron, a systemd "
        "timer or a Kubernetes CronJob). When none has been seen for HEALTH_STALE_AFTER_MINUTES, raise a critical "
        "alert and send every due notification without django-q2; resolve it once one is seen. Exit 0 alive, 1 dead, "
        "2 not judged (staleness off), 3 a database error (unreachable, most likely)."
    )

    def handle(self, **options):
        if stale_after() is None:
            raise CommandError(
                "HEALTH_STALE_AFTER_MINUTES is 0 (or the scheduled health checks are off): nothing to judge by",
                returncode=NOT_JUDGED,
            )
        try:
            self.watch()
        except DATABASE_UNAVAILABLE as e:
            # Unreachable, most likely (nothing to judge by, nowhere to record or send from, and
            # no cluster works either); a statement that failed otherwise (a deadlock, say) stops
            # the run the same way, maybe after part of it. One line for cron's mail or the
            # timer's OnFailure, not a traceback.
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CommandError(
                f"database error, this run stopped there: {type(e).__name__}: {reason}", returncode=DATABASE_DOWN
            ) from e

    def watch(self) -> None:
        now = clock.now()
        liveness = worker_liveness(now)
        if not liveness["alive"]:
            # Why: stopped, cut off from the broker, or running but stuck (named in the alert).
            liveness["broker"] = broker_reading(timeout=settings.HEALTH["CHECK_TIMEOUT"])
        alert = alert_manager.check_workers_sync(liveness)
        overdue = checks_overdue(now) if liveness["alive"] else None
        if overdue is not None:
            # Not the resources, as on schedule: every node samples its own, and this machine's
            # readings named it a worker node gone once they stopped (it runs no cluster).
            health_service.run_health_checks_sync(resources=False)
            self.stdout.write(
                f"health checks overdue (they last ran {duration((now - overdue).total_seconds())} ago: every "
                "worker busy?): run here, with escalations and deliveries"
            )
        # Committed by now: no network I/O inside a transaction.
        if not liveness["alive"] or overdue is not None:
            # Nothing else escalates or delivers while no worker is free: this command does, for
            # every alert, not only its own.
            alert_manager.escalate_due_alerts_sync()
            if not liveness["alive"]:
                take_back_lost_sends()  # a send cut short when the cluster died
            sent = deliveries_send_due()
        else:
            sent = deliveries_send_due(alert_id=alert.id) if alert is not None else []
        if alert is not None:
            state = "resolved" if alert.resolved_at else "open"
            self.stdout.write(f"alert {alert.id} {state} ({alert.title})")
        if sent:
            self.stdout.write(f"deliveries attempted here: {', '.join(sent)}")
        if not liveness["alive"]:
            raise CommandError(f"no worker cluster is running: {describe(liveness, now)}", returncode=DEAD)
        self.stdout.write(f"alive: {describe(liveness, now)}")
