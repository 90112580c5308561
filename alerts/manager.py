"""The design's AlertManager: raise alerts from the rules, count repeats into one, notify, escalate.

Each method named in the design is awaitable, with a `_sync` twin that the signal receivers
and django-q2 tasks call. Every decision that several processes could take at once is made
by the database: a unique index on the fingerprint of open alerts (one alert however many
workers report the same failure), atomic counters, and conditional UPDATEs for "notify
again", "escalate" and "resolve" (only one process wins each).
"""

import logging
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from alerts import rules
from alerts.models import (
    SEVERITY_RANK,
    AlertHistory,
    AlertOccurrence,
    AlertState,
    AlertType,
    DeliveryKind,
    DeliveryStatus,
    NotificationDelivery,
    Severity,
)
from alerts.services import acknowledged, alert_resolve, lock_state, queue_notifications
from jobs import clock
from jobs.payloads import clip, to_json_value
from monitoring.health import component_key
from monitoring.metrics import execution_time_stats

logger = logging.getLogger(__name__)


def fingerprint(alert_type: str, data: dict) -> str:
    """What makes two occurrences "the same alert": its type and job type or check name.

    `data["fingerprint"]` overrides it (e.g. one alert per job where that matters).
    """
    if data.get("fingerprint"):
        return clip(f"{alert_type}:{data['fingerprint']}", 200)
    return clip(f"{alert_type}:{data.get('job_type') or data.get('check') or ''}", 200)


def _recipients(severity: str, *, escalation: bool = False) -> list[str]:
    routing = settings.ALERTS["ESCALATION_RECIPIENTS" if escalation else "RECIPIENTS"]
    return list(routing.get(severity, []))


def _rule_enabled(alert_type: str) -> bool:
    # Alert types without a rule (raised by other code) are always on.
    return alert_type not in rules.DEFAULT_RULES or bool(rules.rule_config(alert_type)["enabled"])


def _not_escalated() -> Q:
    return Q(escalated=False) | Q(escalated__isnull=True)


class AlertManager:
    # --- the rules' entry points ---------------------------------------------------------

    def should_alert(self, event_type: str, data: dict) -> bool:
        """Would an occurrence of this event notify anyone now?

        False when its rule is off, or while an open alert with the same fingerprint was
        notified less than the repeat interval ago (the occurrence would only be counted).
        A read: process_alert takes the same decision atomically when it records one.
        """
        if not _rule_enabled(event_type):
            return False
        state = AlertState.objects.filter(fingerprint=fingerprint(event_type, data), is_open=True).first()
        return state is None or self._repeat_due(state, event_type, clock.now())

    def process_alert_sync(self, alert_type: str, severity: str, data: dict) -> AlertHistory | None:
        """Record one occurrence: open an alert and notify, or count it into the open one.

        data: title, message, and any of job_id, job_type, check (a health check's name),
        error (the classified error or reading, one line), details (dict), fingerprint.
        Returns the alert it opened or counted into; None when the rule is off.
        """
        if severity not in Severity.values:
            raise ValueError(f"severity must be one of {', '.join(Severity.values)}, not {severity!r}")
        if not _rule_enabled(alert_type):
            return None
        key = fingerprint(alert_type, data)
        for _ in range(3):
            try:
                with transaction.atomic():
                    return (
                        self._count_occurrence(key, alert_type, severity, data)
                        or self._reopen_flapping(key, severity, data)
                        or self._open_alert(key, alert_type, severity, data)
                    )
            except IntegrityError:
                # Another process opened the same alert a moment ago: count into it instead.
                self._close_stale_states(key)
        raise RuntimeError(f"could not record an occurrence of {key} (three races lost in a row)")

    def _open_alert(self, key: str, alert_type: str, severity: str, data: dict) -> AlertHistory:
        now = clock.now()
        recipients = _recipients(severity)
        title = clip(data.get("title") or alert_type, 200)
        alert = AlertHistory.objects.create(
            alert_type=alert_type,
            severity=severity,
            title=title,
            message=clip(data.get("message") or title, 10_000),
            job_id=data.get("job_id"),
            triggered_at=now,
            recipients=recipients,
            notification_sent=False,
            escalated=False,
            created_at=now,
        )
        # The unique index on open fingerprints refuses this if another process won the race.
        AlertState.objects.create(
            alert=alert,
            fingerprint=key,
            last_seen_at=now,
            job_type=clip(data.get("job_type") or "", 100),
            last_job_id=data.get("job_id"),
            error_summary=clip(data.get("error") or "", 500),
            last_notified_at=now if recipients else None,
            details=to_json_value(data.get("details") or {}),
        )
        self._record_job(alert.id, data, now)
        self.send_notification_sync(recipients, "New alert", severity, alert=alert, kind=DeliveryKind.ALERT)
        return alert

    def _occurrence_changes(self, data: dict, now) -> dict:
        changes = {"occurrences": F("occurrences") + 1, "last_seen_at": now}
        if data.get("error"):
            changes["error_summary"] = clip(data["error"], 500)
        if data.get("job_id"):
            changes["last_job_id"] = data["job_id"]
        if data.get("details"):
            changes["details"] = to_json_value(data["details"])
        return changes

    def _count_occurrence(self, key: str, alert_type: str, severity: str, data: dict) -> AlertHistory | None:
        # Lock the open state row (Postgres) so the notify-again decisions below are taken by
        # one occurrence at a time. Locked alone: after waiting for a resolution to commit,
        # Postgres re-checks `is_open` on the row it locks, but a row joined in the same
        # statement comes back as it was before the wait.
        state = AlertState.objects.select_for_update().filter(fingerprint=key, is_open=True).first()
        if state is None:
            return None
        # Read after the lock: whoever held it (another occurrence raising the severity, an
        # escalation adding recipients) has committed, and this read sees what they wrote. The
        # time too (as alert_resolve): what it records comes after what they recorded.
        now = clock.now()
        state.alert = AlertHistory.objects.get(id=state.alert_id)
        if state.alert.resolved_at is not None:  # resolved without alert_resolve (a raw UPDATE)
            AlertState.objects.filter(pk=state.pk).update(is_open=False)
            return None
        AlertState.objects.filter(pk=state.pk).update(**self._occurrence_changes(data, now))
        state.occurrences += 1
        alert = state.alert
        self._record_job(alert.id, data, now)
        if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(alert.severity, 0):
            self._raise_severity(state, severity, data, now)
        elif self._repeat_due(state, alert_type, now) and self._claim_notification(state, now):
            self.send_notification_sync(
                alert.recipients or [],
                f"Still occurring: {state.occurrences} times since {alert.triggered_at:%Y-%m-%d %H:%M} UTC",
                alert.severity,
                alert=alert,
                kind=DeliveryKind.REPEAT,
            )
        return alert

    def _reopen_flapping(self, key: str, severity: str, data: dict) -> AlertHistory | None:
        """A condition back within FLAP_MINUTES of clearing by itself reopens the alert it cleared.

        A drill: a health check failing and recovering every minute raised 30 alerts an hour, each
        paged ("New alert") and announced resolved, 120 emails for two recipients. Reopened, it is
        one alert, counted, marked flapping (`reopened`), and it stays open until its condition
        has stayed clear for FLAP_MINUTES (resolve_cleared_sync). Its recipients, told it was
        resolved, are told it is back, once per reopening. An alert resolved by hand is not reopened: the next
        occurrence raises a new alert, as before.
        """
        minutes = settings.ALERTS["FLAP_MINUTES"]
        if minutes <= 0:
            return None
        # A lesser condition is not the same one back (no worker at all, then a node short): it
        # raises an alert of its own, which a critical alert reopened would have hidden.
        as_severe = [s for s in Severity.values if SEVERITY_RANK.get(s, 0) <= SEVERITY_RANK.get(severity, 0)]
        state = (
            AlertState.objects.select_for_update(of=("self",))
            .filter(
                fingerprint=key,
                is_open=False,
                resolved_by="",
                resolution_reason__startswith="Auto-resolved",
                alert__resolved_at__gte=clock.now() - timedelta(minutes=minutes),
                alert__severity__in=as_severe,
            )
            .order_by("-alert__resolved_at")
            .first()
        )
        if state is None:
            return None
        # Once the lock is held (as _count_occurrence): read before, a resolution committed
        # meanwhile came after it, "back -1 min after it cleared", last seen before it cleared.
        now = clock.now()
        # Conditional: of two processes reopening it, one does (the other counts into it on retry).
        if not AlertState.objects.filter(pk=state.pk, is_open=False).update(
            is_open=True, reopened=F("reopened") + 1, resolution_reason="", **self._occurrence_changes(data, now)
        ):
            return None
        # Read once the state row is locked: a row joined to the locking statement is read as it
        # was before any wait (see _count_occurrence).
        alert = AlertHistory.objects.get(id=state.alert_id)
        cleared_at, alert.resolved_at = alert.resolved_at, None
        AlertHistory.objects.filter(id=alert.id).update(resolved_at=None)
        state.refresh_from_db()  # the counts the update made
        state.alert = alert
        self._record_job(alert.id, data, now)
        # A "Resolved" still waiting (its channel was down) would arrive after this, saying it is
        # over while it is open again.
        NotificationDelivery.objects.filter(
            alert_id=alert.id, kind=DeliveryKind.RESOLVED, status=DeliveryStatus.PENDING
        ).update(status=DeliveryStatus.CANCELLED, last_error="alert reopened before delivery", updated_at=now)
        if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(alert.severity, 0):
            self._raise_severity(state, severity, data, now)
            return alert
        AlertState.objects.filter(pk=state.pk).update(last_notified_at=now)
        minutes_clear = int((now - cleared_at).total_seconds() // 60)
        headline = f"Flapping: back {minutes_clear} min after it cleared (reopened {state.reopened}x)"
        self.send_notification_sync(
            alert.recipients or [], headline, alert.severity, alert=alert, kind=DeliveryKind.REOPENED
        )
        return alert

    def _raise_severity(self, state: AlertState, severity: str, data: dict, now) -> None:
        """An occurrence worse than the alert so far (warning -> critical) is news: say so.

        The alert takes that occurrence's title and message: a health check's say its status and
        reading ("… is critical"), which read "… is warning" under a critical badge otherwise.
        An alert already escalated is escalated at its new severity too: that severity's
        escalation recipients are told now (escalation happens once, at the old severity's).
        An acknowledgement ends here: it was given for what the alert was.
        """
        alert = state.alert
        told = [*_recipients(severity), *(_recipients(severity, escalation=True) if alert.escalated else [])]
        recipients = list(dict.fromkeys([*(alert.recipients or []), *told]))
        title = clip(data["title"], 200) if data.get("title") else alert.title
        message = clip(data["message"], 10_000) if data.get("message") else alert.message
        if not AlertHistory.objects.filter(id=alert.id, severity=alert.severity).update(
            severity=severity, recipients=recipients, title=title, message=message
        ):
            return
        previous, alert.severity, alert.recipients = alert.severity, severity, recipients
        alert.title, alert.message = title, message
        ended = {"acknowledged_until": now} if acknowledged(state, now) else {}
        AlertState.objects.filter(pk=state.pk).update(last_notified_at=now, **ended)
        headline = f"Severity raised from {previous} to {severity}"
        if ended:
            headline += f" (acknowledged by {state.acknowledged_by or 'someone'}: acknowledge again)"
        self.send_notification_sync(recipients, headline, severity, alert=alert, kind=DeliveryKind.SEVERITY_RAISED)

    def _repeat_due(self, state: AlertState, alert_type: str, now) -> bool:
        minutes = rules.repeat_after_minutes(alert_type)
        if minutes <= 0 or state.last_notified_at is None or acknowledged(state, now):
            return False
        return state.last_notified_at <= now - timedelta(minutes=minutes)

    def _claim_notification(self, state: AlertState, now) -> bool:
        # Compare-and-set on the time last notified: one repeat per interval, whoever asks.
        return bool(
            AlertState.objects.filter(pk=state.pk, last_notified_at=state.last_notified_at).update(last_notified_at=now)
        )

    def _record_job(self, alert_id, data: dict, now) -> None:
        if data.get("job_id"):
            AlertOccurrence.objects.bulk_create(
                [AlertOccurrence(alert_id=alert_id, job_id=data["job_id"], seen_at=now)], ignore_conflicts=True
            )

    def _close_stale_states(self, key: str) -> None:
        # An alert resolved without alert_resolve (a raw UPDATE) would block its fingerprint forever.
        AlertState.objects.filter(fingerprint=key, is_open=True, alert__resolved_at__isnull=False).update(is_open=False)

    # --- notifications -----------------------------------------------------------------

    def send_notification_sync(
        self, recipients: list[str], message: str, priority: str, *, alert: AlertHistory, kind: str = DeliveryKind.ALERT
    ) -> list[NotificationDelivery]:
        """Queue one delivery per recipient; each is sent by django-q2 once this transaction commits.

        `message` is the notification's headline (why it is sent); the body is rendered from
        the alert when it is sent, so a delivery retried later carries the current count.
        `priority` is the severity it is sent at. Never sends anything itself: no network I/O
        may happen inside a transaction or in the job's path.
        """
        return queue_notifications(recipients, message, priority, alert=alert, kind=kind)

    # --- escalation ----------------------------------------------------------------------

    def escalate_alert_sync(self, alert_id, *, unless_acknowledged: bool = False) -> bool:
        """Mark an open alert escalated and notify its severity's escalation recipients, once.

        False (and nothing sent) when it is resolved or already escalated, or, with
        unless_acknowledged (the periodic sweep), while an acknowledgement holds it.
        """
        with transaction.atomic():
            lock_state(alert_id)
            now = clock.now()  # once the locks are held, as alert_resolve
            state = AlertState.objects.filter(alert_id=alert_id).first()
            if unless_acknowledged and acknowledged(state, now):
                return False
            if not AlertHistory.objects.filter(_not_escalated(), id=alert_id, resolved_at__isnull=True).update(
                escalated=True
            ):
                return False
            alert = AlertHistory.objects.get(id=alert_id)
            extra = _recipients(alert.severity, escalation=True)
            recipients = list(dict.fromkeys([*(alert.recipients or []), *extra]))
            if recipients != (alert.recipients or []):
                AlertHistory.objects.filter(id=alert_id).update(recipients=recipients)
                alert.recipients = recipients
            AlertState.objects.filter(alert_id=alert_id).update(escalated_at=now)
            minutes = int((now - alert.triggered_at).total_seconds() // 60)
            headline = f"Escalated: unresolved for {minutes} min"
            if state is not None and state.acknowledged_at:
                headline += f", acknowledged by {state.acknowledged_by or 'someone'} {state.acknowledged_at:%H:%M} UTC"
            self.send_notification_sync(extra, headline, alert.severity, alert=alert, kind=DeliveryKind.ESCALATION)
        return True

    def escalate_due_alerts_sync(self, *, limit: int = 100) -> int:
        """Escalate open alerts older than their severity's ESCALATE_AFTER_MINUTES (the periodic task)."""
        now = clock.now()
        due = Q()
        for severity, minutes in settings.ALERTS["ESCALATE_AFTER_MINUTES"].items():
            if minutes and minutes > 0:
                due |= Q(severity=severity, triggered_at__lte=now - timedelta(minutes=minutes))
        if not due:
            return 0
        candidates = (
            AlertHistory.objects.filter(_not_escalated(), due, resolved_at__isnull=True)
            .exclude(state__acknowledged_until__gt=now)
            .order_by("triggered_at")
            .values_list("id", flat=True)[:limit]
        )
        return sum(self.escalate_alert_sync(alert_id, unless_acknowledged=True) for alert_id in list(candidates))

    # --- conditions that clear by themselves ------------------------------------------------

    def auto_resolve_sync(self, alert: AlertHistory, reason: str) -> bool:
        """Resolve an alert whose condition cleared (whoever was told it was raised hears it)."""
        return alert_resolve(alert=alert, user=None, reason=reason)

    def resolve_cleared_sync(self, keys: dict[str, str]) -> list[AlertHistory]:
        """Auto-resolve the open alerts among `keys` ({fingerprint: reason}); returns those it
        resolved. One query to find them, then each is judged on its locked rows."""
        if not keys:
            return []
        found = AlertState.objects.filter(fingerprint__in=list(keys), is_open=True).values_list(
            "alert_id", "fingerprint"
        )
        resolved = [self._resolve_cleared(alert_id, keys[key]) for alert_id, key in list(found)]
        return [alert for alert in resolved if alert is not None]

    def _resolve_cleared(self, alert_id, reason: str) -> AlertHistory | None:
        """Resolve one alert whose condition cleared, unless it is flapping (reopened) and was seen
        less than FLAP_MINUTES ago: it is resolved once its condition has stayed clear that long,
        not at its first healthy reading (one "Resolved", when it is over).

        Decided once its rows are locked, as an occurrence is: read before, another node's
        occurrence (the quiet period starts over) or its resolution and a reopening (just
        reopened, flapping) committed meanwhile went unseen, and the alert was resolved anyway.
        """
        with transaction.atomic():
            lock_state(alert_id)
            state = AlertState.objects.select_related("alert").filter(alert_id=alert_id, is_open=True).first()
            if state is None:  # resolved meanwhile, by someone else
                return None
            quiet_since = clock.now() - timedelta(minutes=settings.ALERTS["FLAP_MINUTES"])
            if state.reopened and state.last_seen_at > quiet_since:
                return None
            return state.alert if self.auto_resolve_sync(state.alert, reason) else None

    # --- the rules, fed by signals and the periodic task --------------------------------

    def handle_job_finished(self, job) -> AlertHistory | None:
        verdict = rules.job_failure_verdict(job)
        if verdict is None:
            return None
        return self.process_alert_sync(verdict.alert_type, verdict.severity, verdict.data)

    def handle_health_checked(self, results, previous: dict | None = None) -> None:
        previous = previous or {}
        cleared = {}
        for metric in results:
            # The same component's previous status: for a resource, the same host's reading.
            key = component_key(metric.metric_type, metric.metric_name, metric.details)
            verdict = rules.health_verdict(metric, previous.get(key))
            if verdict is None:
                continue
            if verdict.severity:
                try:  # one check's alert failing must not keep the others from theirs
                    self.process_alert_sync(verdict.alert_type, verdict.severity, verdict.data)
                except Exception:
                    logger.exception("could not raise the alert for %s", verdict.data["check"])
            else:
                reason = f"Auto-resolved: {verdict.data['error']} at {metric.timestamp:%Y-%m-%d %H:%M:%S} UTC."
                cleared[fingerprint(verdict.alert_type, verdict.data)] = reason
                if verdict.data.get("fingerprint"):
                    # A resource alert raised before its fingerprint named the host has the
                    # check's own: a healthy reading of the check clears it too.
                    cleared[fingerprint(verdict.alert_type, {"check": verdict.data["check"]})] = reason
        self.resolve_cleared_sync(cleared)

    def check_performance_sync(self) -> int:
        """The performance degradation rule over every job type; returns how many are degraded."""
        config = rules.rule_config(AlertType.PERFORMANCE_DEGRADATION)
        if not config["enabled"]:
            return 0
        now = clock.now()
        window_start = now - timedelta(minutes=config["window_minutes"])
        recent = execution_time_stats(since=window_start, until=now, by_job_type=True)
        baseline = execution_time_stats(
            since=window_start - timedelta(hours=config["baseline_hours"]), until=window_start, by_job_type=True
        )
        degraded, cleared = 0, {}
        for verdict in rules.performance_verdicts(recent, baseline):
            if verdict.severity:
                self.process_alert_sync(verdict.alert_type, verdict.severity, verdict.data)
                degraded += 1
            else:
                cleared[fingerprint(verdict.alert_type, verdict.data)] = f"Auto-resolved: {verdict.data['error']}."
        self.resolve_cleared_sync(cleared)
        return degraded

    def check_workers_sync(self, liveness: dict) -> AlertHistory | None:
        """The cluster watchdog's rule over monitoring.health.worker_liveness(): raise, or count
        into, the no-worker alert while no worker is seen; resolve it once one is. Returns the
        alert raised, counted into or resolved now (None: nothing to do, or a flapping alert kept
        open until no worker has been missed for FLAP_MINUTES, as every rule's)."""
        verdict = rules.no_worker_verdict(liveness, clock.now())
        if verdict is None:
            return None
        if verdict.severity:
            return self.process_alert_sync(verdict.alert_type, verdict.severity, verdict.data)
        # An alert the watchdog raised under its old check name is resolved too.
        reason = f"Auto-resolved: {verdict.data['error']}."
        keys = {fingerprint(verdict.alert_type, {"check": check}): reason for check in rules.NO_WORKER_CHECKS}
        if liveness.get("short_of_workers"):
            # Workers are seen, fewer than HEALTH_EXPECTED_WORKERS: a warning alert of this check is the
            # health check's, which its own healthy reading clears (resolved here, it was reopened at
            # the next check: three notices for one node gone, one of them false). A critical one
            # said no worker runs: that is over, and counted into by the warnings it read "No
            # worker cluster has run…" until every node was back.
            still_critical = AlertState.objects.filter(
                fingerprint__in=keys, is_open=True, alert__severity=Severity.CRITICAL
            ).values_list("fingerprint", flat=True)
            keys = {key: keys[key] for key in still_critical}
            if not keys:
                return None
        resolved = self.resolve_cleared_sync(keys)
        return resolved[-1] if resolved else None

    # --- the design's awaitable interface -------------------------------------------------

    async def process_alert(self, alert_type: str, severity: str, data: dict) -> AlertHistory | None:
        return await sync_to_async(self.process_alert_sync)(alert_type, severity, data)

    async def escalate_alert(self, alert_id) -> bool:
        return await sync_to_async(self.escalate_alert_sync)(alert_id)

    async def send_notification(self, recipients: list[str], message: str, priority: str, **kwargs):
        return await sync_to_async(self.send_notification_sync)(recipients, message, priority, **kwargs)


alert_manager = AlertManager()
