"""Writes: acknowledging and resolving alerts, and queueing and delivering their notifications.

Delivery is its own small state machine on NotificationDelivery rows, run by django-q2
tasks (alerts.tasks.deliver) and a periodic sweep, rather than as jobs of our own job
runner: a failed delivery must never be able to raise a job-failure alert that sends
another notification (no loops), and the alerting path must keep working when the job
runner is what is broken. Each step is a conditional UPDATE, so duplicate tasks and
several clusters are harmless:

    pending --claim--> sending --ok--> sent
                          |--error, attempts left--> pending (next_attempt_at = now + backoff)
                          '--permanent error or none left--> failed
    pending --alert resolved--> cancelled (a "Resolved": alert reopened)
"""

import logging
import time
from datetime import UTC, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Q, QuerySet

from alerts.channels import Notification, TransportError, UnknownRecipient, transport_for
from alerts.channels.base import shown_plainly
from alerts.models import AlertHistory, AlertState, DeliveryKind, DeliveryStatus, NotificationDelivery
from jobs import clock
from jobs.payloads import clip
from jobs.retry import RetryManager

logger = logging.getLogger(__name__)


# --- resolution ----------------------------------------------------------------------------


def lock_state(alert_id) -> None:
    """Take the alert's state row lock, then its alert row's (Postgres; SQLite serialises writers
    anyway).

    Recording an occurrence locks the state row and then may update the alert row; resolving,
    acknowledging and escalating take the same two locks in the same order, so they never
    deadlock. An alert raised by other code has no state row: it is created here first (or, when
    another transaction is creating it, waited for), then locked, so that every path holds the
    state row before it asks for the alert row. Taking the alert row's lock without a state row
    to lock deadlocked (1 run in 6 of four clicks at once): one transaction held the alert row and
    updated the state row another had created and locked meanwhile, which waited for the alert
    row. The alert row's lock serialises them further (a resolution and an acknowledgement at
    once: the acknowledgement, having read the alert open, was recorded and notified after the
    resolution). NO KEY: inserting a delivery or an occurrence of the alert (a foreign key to it)
    does not wait for it.
    """
    if not _lock_state_row(alert_id):
        alert = AlertHistory.objects.filter(id=alert_id).first()
        if alert is not None:
            state = AlertState(
                alert=alert,
                fingerprint=f"{alert.alert_type}:{alert.id}",  # its own: nothing else raises it
                is_open=alert.resolved_at is None,
                last_seen_at=alert.triggered_at,
            )
            AlertState.objects.bulk_create([state], ignore_conflicts=True)
            _lock_state_row(alert_id)
    list(AlertHistory.objects.select_for_update(no_key=True).filter(id=alert_id).values_list("pk"))


def _lock_state_row(alert_id) -> bool:
    return bool(list(AlertState.objects.select_for_update().filter(alert_id=alert_id).values_list("pk")))


MAX_REASON_CHARS = 2_000


def alert_resolve(*, alert: AlertHistory, user=None, reason: str = "") -> bool:
    """Resolve an open alert: sets resolved_at, records who and why.

    Returns False and changes nothing when it was already resolved (idempotent; of two
    operators clicking at once exactly one wins). Notifications still waiting to be
    delivered are cancelled: nobody needs to be paged about a resolved alert.
    """
    who = user.get_username() if user is not None else ""
    with transaction.atomic():
        lock_state(alert.id)
        # Read once the locks are held: who waited for whom is the order the times record.
        now = clock.now()
        if not AlertHistory.objects.filter(id=alert.id, resolved_at__isnull=True).update(resolved_at=now):
            return False
        state_fields = {
            "is_open": False,
            "resolved_by": clip(who, 150),
            "resolution_reason": clip(reason, MAX_REASON_CHARS),
        }
        AlertState.objects.filter(alert_id=alert.id).update(**state_fields)  # lock_state made sure it exists
        NotificationDelivery.objects.filter(alert_id=alert.id, status=DeliveryStatus.PENDING).exclude(
            kind=DeliveryKind.RESOLVED
        ).update(status=DeliveryStatus.CANCELLED, last_error="alert resolved before delivery", updated_at=now)
        # Whoever was paged stops working on it; by whom says it was not the condition clearing.
        tell_those_told(alert, f"Resolved by {who}" if who else "Resolved", kind=DeliveryKind.RESOLVED)
    alert.resolved_at = now
    return True


def alert_acknowledge(*, alert: AlertHistory, user=None) -> bool:
    """Acknowledge an open alert: someone is on it. For ALERTS["ACKNOWLEDGE_MINUTES"] it is not
    escalated and not notified again as it keeps occurring; if it is still open then, both
    resume. Acknowledging an acknowledged alert renews it (who, from now). A worse occurrence
    ends it (alerts.manager: the severity raised is notified, and needs acknowledging again).

    Whoever was told about the alert hears who is on it, so nobody else starts on it too (not
    again when the same person renews it while it holds).

    Returns False and changes nothing when the alert is resolved: nothing left to hold.
    """
    who = clip(user.get_username() if user is not None else "", 150)
    with transaction.atomic():
        lock_state(alert.id)  # as escalation does: it then sees this acknowledgement, or came first
        now = clock.now()  # once the locks are held, as alert_resolve
        fields = {
            "acknowledged_at": now,
            "acknowledged_by": who,
            "acknowledged_until": now + timedelta(minutes=settings.ALERTS["ACKNOWLEDGE_MINUTES"]),
        }
        if not AlertHistory.objects.filter(id=alert.id, resolved_at__isnull=True).exists():
            return False
        before = AlertState.objects.filter(alert_id=alert.id).first()
        renewal = acknowledged(before, now) and before.acknowledged_by == who
        AlertState.objects.filter(alert_id=alert.id).update(**fields)  # lock_state made sure it exists
        if not renewal:
            until = fields["acknowledged_until"].astimezone(UTC)
            headline = f"Acknowledged by {who or 'someone'} until {until:%H:%M} UTC"
            tell_those_told(alert, headline, kind=DeliveryKind.ACKNOWLEDGED)
    return True


class AlertKeptChanging(Exception):
    """An operator's action found the alert resolved, then read it back open, every time it tried.
    `alert`: as it was read back last."""

    def __init__(self, alert: AlertHistory):
        super().__init__(f"alert {alert.id} kept changing state")
        self.alert = alert


ACTION_TRIES = 3


def alert_act(
    action, *, alert: AlertHistory, shown: QuerySet[AlertHistory], **kwargs
) -> tuple[bool, AlertHistory | None]:
    """An operator's Resolve or Acknowledge (`action`: alert_resolve or alert_acknowledge, with
    its keyword arguments), as the API and the dashboard answer it: (whether it acted, the alert
    read back from `shown`, the caller's query, as its answer shows it; None once deleted).

    A flapping alert can be found resolved by the action, then reopened by its condition before
    it is read back: answered "already resolved" beside an open alert (the API's "resolved at
    None" was a 500). It is open, so the action runs again; AlertKeptChanging after ACTION_TRIES.
    """
    for _ in range(ACTION_TRIES):
        acted = action(alert=alert, **kwargs)
        alert = shown.filter(id=alert.id).first()
        if acted or alert is None or alert.resolved_at is not None:
            return acted, alert
    raise AlertKeptChanging(alert)


def acknowledged(state: AlertState | None, now) -> bool:
    """Whether an acknowledgement holds the alert's escalation and repeats at `now`."""
    until = getattr(state, "acknowledged_until", None)
    return until is not None and until > now


# --- notification ----------------------------------------------------------------------------


def queue_notifications(
    recipients: list[str], headline: str, severity: str, *, alert: AlertHistory, kind: str
) -> list[NotificationDelivery]:
    """One delivery per recipient (AlertManager.send_notification), sent by django-q2 once this
    transaction commits: no network I/O inside a transaction or in a job's path. The body is
    rendered from the alert when it is sent, so a delivery retried later carries the current count."""
    now = clock.now()
    deliveries = []
    for recipient in dict.fromkeys(r.strip() for r in recipients if r.strip()):
        delivery = NotificationDelivery(
            alert=alert,
            kind=kind,
            headline=clip(headline, 200),
            severity=severity,
            recipient=recipient,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        try:
            delivery.channel = transport_for(recipient).channel
        except UnknownRecipient as e:
            # Kept, failed, where an operator sees it, rather than dropped silently.
            delivery.channel, delivery.status, delivery.last_error = "unknown", DeliveryStatus.FAILED, str(e)
        deliveries.append(delivery)
    NotificationDelivery.objects.bulk_create(deliveries)
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.PENDING:
            transaction.on_commit(partial(enqueue_delivery, delivery.id))
    if not deliveries:
        logger.warning("alert %s (%s): nobody to notify for %s (%s)", alert.id, alert.title, kind, severity)
    return deliveries


def tell_those_told(alert: AlertHistory, headline: str, *, kind: str) -> list[NotificationDelivery]:
    """Notify what became of the alert to each recipient who was told about it: sent a
    notification, or being sent one right now (a delivery in flight is not cancelled by a
    resolution). Nobody hears about an alert they never heard of (an escalation still waiting,
    cancelled by the resolution, told the lead nothing). One query."""
    told = (
        NotificationDelivery.objects.filter(alert_id=alert.id, status__in=[DeliveryStatus.SENT, DeliveryStatus.SENDING])
        .values("recipient")
        .annotate(first=Min("id"))
        .order_by("first")
    )
    recipients = [row["recipient"] for row in told]
    return queue_notifications(recipients, headline, alert.severity, alert=alert, kind=kind) if recipients else []


# --- delivery ------------------------------------------------------------------------------


def _task_timeout() -> int:
    # django-q2 kills a delivery stuck past this; the sweep then takes the attempt back.
    return int(settings.ALERTS["DELIVERY_TIMEOUT"] * 3) + 30


def enqueue_delivery(delivery_id: int) -> None:
    """Hand a delivery to django-q2, ahead of the jobs waiting in the queue. If that fails, the
    periodic sweep enqueues it again."""
    from jobs.queue import enqueue_urgent

    try:
        enqueue_urgent(
            "alerts.tasks.deliver",
            delivery_id,
            q_options={
                "timeout": _task_timeout(),
                "task_name": f"alert-delivery-{delivery_id}",
            },
        )
    except Exception:
        logger.exception("could not enqueue notification delivery %s; the sweep will", delivery_id)


def build_notification(delivery: NotificationDelivery) -> Notification:
    """What the delivery says, rendered now (so a retry carries the current occurrence count)."""
    alert = delivery.alert
    state = AlertState.objects.filter(alert_id=alert.id).first()
    job_id = (state.last_job_id if state else None) or alert.job_id
    job_type = state.job_type if state else ""
    if not job_type and alert.job_id:
        job_type = alert.job.job_type
    last_seen = state.last_seen_at if state else alert.triggered_at
    held = acknowledged(state, clock.now())
    site = settings.SITE_URL
    return Notification(
        kind=delivery.kind,
        headline=delivery.headline,
        alert_id=str(alert.id),
        alert_type=alert.alert_type,
        severity=alert.severity,
        title=shown_plainly(alert.title),
        message=shown_plainly(alert.message),
        job_type=shown_plainly(job_type),
        job_id=str(job_id) if job_id else "",
        error=shown_plainly((state.error_summary if state else "") or (alert.message.splitlines() or [""])[0][:500]),
        occurrences=state.occurrences if state else 1,
        triggered_at=alert.triggered_at.isoformat(timespec="seconds"),
        last_seen_at=last_seen.isoformat(timespec="seconds"),
        url=f"{site}/alerts/{alert.id}/",
        job_url=f"{site}/jobs/{job_id}/" if job_id else "",
        acknowledged_by=shown_plainly(state.acknowledged_by) if held else "",
        acknowledged_until=state.acknowledged_until.isoformat(timespec="seconds") if held else "",
        delivery_id=str(delivery.id),
    )


def _due(now) -> Q:
    # A first attempt is due the moment it is queued: judged by this node's clock it could look
    # a few milliseconds early (another node raised it) and wait for the sweep, a minute late.
    return Q(attempts=0) | Q(next_attempt_at__lte=now)


def delivery_send(*, delivery_id: int) -> str | None:
    """One attempt of one delivery (the task). Returns its new status, None if not ours to send."""
    now = clock.now()
    claimed = NotificationDelivery.objects.filter(_due(now), id=delivery_id, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, claimed_at=now, updated_at=now
    )
    if not claimed:  # a duplicate task, not due yet, or already done
        return None
    delivery = NotificationDelivery.objects.select_related("alert").get(id=delivery_id)
    if outdated := _outdated(delivery):
        NotificationDelivery.objects.filter(id=delivery_id, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.CANCELLED, last_error=outdated, updated_at=now
        )
        return DeliveryStatus.CANCELLED
    started = time.monotonic()
    try:
        transport_for(delivery.recipient).notify(
            build_notification(delivery), timeout=settings.ALERTS["DELIVERY_TIMEOUT"]
        )
    except UnknownRecipient as e:
        return _record_failure(delivery, TransportError(str(e), permanent=True), started)
    except TransportError as e:
        return _record_failure(delivery, e, started)
    except Exception as e:
        # A bug in a channel must not leave the delivery stuck in "sending".
        logger.exception("notification delivery %s crashed", delivery_id)
        return _record_failure(delivery, TransportError(f"{type(e).__name__}: {e}"), started)
    return _record_success(delivery, started)


def _outdated(delivery: NotificationDelivery) -> str:
    """Why the delivery would now say what its alert no longer is ("" if it still is). Resolving
    and reopening cancel the deliveries waiting, not one in flight; when that one fails, its retry
    comes here: a notice of a resolved alert, or a "Resolved" of an alert reopened (flapping)
    after its "Flapping: back"."""
    resolved = delivery.alert.resolved_at is not None
    if delivery.kind == DeliveryKind.RESOLVED:
        return "" if resolved else "alert reopened before delivery"
    return "alert resolved before delivery" if resolved else ""


def deliveries_send_due(*, alert_id=None, limit: int = 200) -> list[str]:
    """Attempt, here and now, the due deliveries of one alert (or of every alert): how the cluster
    watchdog pages when no django-q2 cluster runs to deliver them. delivery_send's claim sends
    each once, whoever else (a second watchdog, a cluster back up) tries it too. The statuses reached."""
    pending = NotificationDelivery.objects.filter(_due(clock.now()), status=DeliveryStatus.PENDING)
    if alert_id is not None:
        pending = pending.filter(alert_id=alert_id)
    ids = list(pending.order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit])
    statuses = [delivery_send(delivery_id=delivery_id) for delivery_id in ids]
    return [status for status in statuses if status]


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record_success(delivery: NotificationDelivery, started: float) -> str:
    now = clock.now()
    with transaction.atomic():
        NotificationDelivery.objects.filter(
            id=delivery.id, status=DeliveryStatus.SENDING, attempts=delivery.attempts
        ).update(status=DeliveryStatus.SENT, sent_at=now, updated_at=now, last_duration_ms=_elapsed_ms(started))
        # True only now that someone has actually been told.
        AlertHistory.objects.filter(id=delivery.alert_id).exclude(notification_sent=True).update(notification_sent=True)
    logger.info("alert %s: %s delivered to %s", delivery.alert_id, delivery.kind, delivery.channel)
    return DeliveryStatus.SENT


def retry_policy() -> RetryManager:
    alerts = settings.ALERTS
    return RetryManager(
        max_attempts=alerts["DELIVERY_MAX_ATTEMPTS"],
        base_delay=alerts["DELIVERY_BASE_DELAY"],
        max_delay=alerts["DELIVERY_MAX_DELAY"],
    )


def _record_failure(delivery: NotificationDelivery, error: TransportError, started: float | None, **match) -> str:
    now = clock.now()
    policy = retry_policy()
    error_text = clip(f"attempt {delivery.attempts}: {error.message}", 2_000)
    fields = {"last_error": error_text, "updated_at": now, "claimed_at": None}
    if started is not None:
        fields["last_duration_ms"] = _elapsed_ms(started)
    if error.permanent or delivery.attempts >= policy.max_attempts:
        fields["status"] = DeliveryStatus.FAILED
    else:
        fields["status"] = DeliveryStatus.PENDING
        fields["next_attempt_at"] = now + timedelta(seconds=policy.calculate_delay(delivery.attempts))
    updated = NotificationDelivery.objects.filter(
        id=delivery.id, status=DeliveryStatus.SENDING, attempts=delivery.attempts, **match
    ).update(**fields)
    log = logger.error if fields["status"] == DeliveryStatus.FAILED else logger.warning
    log(
        "alert %s: %s to %s failed (%s); %s",
        delivery.alert_id,
        delivery.kind,
        delivery.channel,
        error.message,
        "gave up" if fields["status"] == DeliveryStatus.FAILED else f"retry at {fields['next_attempt_at']:%H:%M:%S}",
    )
    return fields["status"] if updated else delivery.status


def take_back_lost_sends(*, limit: int = 200) -> None:
    """Attempts claimed by a worker that stopped mid-send (killed with its cluster): failed,
    so they are retried after their backoff like any other failed attempt."""
    stale_before = clock.now() - timedelta(seconds=_task_timeout() + 60)
    stale = NotificationDelivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale_before)
    for delivery in stale.order_by("claimed_at")[:limit]:
        lost = TransportError(
            f"interrupted: the worker stopped during the attempt claimed at {delivery.claimed_at:%H:%M:%S}"
        )
        _record_failure(delivery, lost, None, claimed_at=delivery.claimed_at)


def dispatch_due_deliveries(*, limit: int = 200) -> int:
    """The periodic sweep: take back attempts whose worker was lost, enqueue what is due."""
    take_back_lost_sends(limit=limit)
    now = clock.now()
    due = NotificationDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
    ids = list(due.order_by("next_attempt_at").values_list("id", flat=True)[:limit])
    for delivery_id in ids:
        enqueue_delivery(delivery_id)
    return len(ids)
