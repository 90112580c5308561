"""Reads of alerts for the API, the dashboard and admin: one query per list, whatever its length."""

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Coalesce

from alerts.models import AlertHistory, AlertOccurrence, DeliveryStatus, NotificationDelivery, Severity


def with_alert_state(alerts: QuerySet[AlertHistory]) -> QuerySet[AlertHistory]:
    """Annotate occurrences, last_seen_at, resolved_by, resolution_reason, last_delivery_error,
    fingerprint, reopened (more than 0: flapping), job_type and acknowledged_at/_by/_until from
    the alert's state (a LEFT JOIN: alerts raised by other code have none)."""
    undelivered_error = (
        NotificationDelivery.objects.filter(alert_id=OuterRef("pk"))
        .exclude(status__in=[DeliveryStatus.SENT, DeliveryStatus.CANCELLED])
        .exclude(last_error="")
        .order_by("-updated_at")
        .values("last_error")[:1]
    )
    return alerts.annotate(
        occurrences=Coalesce(F("state__occurrences"), Value(1), output_field=IntegerField()),
        last_seen_at=Coalesce(F("state__last_seen_at"), F("triggered_at")),
        resolved_by=Coalesce(F("state__resolved_by"), Value("")),
        resolution_reason=Coalesce(F("state__resolution_reason"), Value(""), output_field=TextField()),
        fingerprint=Coalesce(F("state__fingerprint"), Value("")),
        reopened=Coalesce(F("state__reopened"), Value(0), output_field=IntegerField()),
        acknowledged_at=F("state__acknowledged_at"),
        acknowledged_by=Coalesce(F("state__acknowledged_by"), Value("")),
        acknowledged_until=F("state__acknowledged_until"),
        job_type=Coalesce(F("job__job_type"), F("state__job_type"), Value("")),
        last_delivery_error=Coalesce(Subquery(undelivered_error), Value(""), output_field=TextField()),
    )


def alert_subject(alert: AlertHistory) -> str:
    """What tells an alert from the others of its type and job type, read from its fingerprint
    (one open alert per fingerprint, alerts.manager.fingerprint): a job failure's error class
    ("job_failure:demo.fail/data" → "data"), a health check's name ("database/connect"), a
    host's resource ("resource/disk.percent@node-1"). "" when its job type says it all. Needs
    the annotations of with_alert_state."""
    subject = (getattr(alert, "fingerprint", "") or "").removeprefix(f"{alert.alert_type}:")
    if subject == str(alert.id):  # the fingerprint given to an alert raised by other code: nothing to tell
        return ""
    job_type = getattr(alert, "job_type", "") or ""
    if job_type and subject.startswith(f"{job_type}/"):
        return subject.removeprefix(f"{job_type}/")
    return "" if subject == job_type else subject


def alert_list(
    *,
    include_resolved: bool = False,
    severity: str | None = None,
    alert_type: str | None = None,
    unacknowledged_at=None,
    until=None,
) -> QuerySet[AlertHistory]:
    """Alerts newest first; open ones only unless include_resolved. Given a moment as
    `unacknowledged_at`, only the open ones no acknowledgement holds then: nobody is on them.
    `until`: only those raised by then (pages that alerts raised meanwhile do not shift)."""
    alerts = AlertHistory.objects.all()
    if until is not None:
        alerts = alerts.filter(triggered_at__lte=until)
    if unacknowledged_at is not None:
        alerts = alerts.filter(nobody_on_it(unacknowledged_at))
    elif not include_resolved:
        alerts = alerts.filter(resolved_at__isnull=True)  # the partial index alert_open_idx
    if severity:
        alerts = alerts.filter(severity=severity)
    if alert_type:
        alerts = alerts.filter(alert_type=alert_type)
    return with_alert_state(alerts).order_by("-triggered_at", "-id")


def nobody_on_it(now) -> Q:
    """Open alerts no acknowledgement holds at `now`: nobody said they are on them."""
    # A LEFT JOIN: an alert raised by other code may have no state row, so no acknowledgement.
    not_held = Q(state__acknowledged_until__isnull=True) | Q(state__acknowledged_until__lte=now)
    return Q(resolved_at__isnull=True) & not_held  # the partial index alert_open_idx


def open_alert_counts() -> dict[str, int]:
    """Unresolved alerts per severity, every severity present. One query."""
    counts = dict.fromkeys(Severity.values, 0)
    rows = AlertHistory.objects.filter(resolved_at__isnull=True).values_list("severity").annotate(n=Count("id"))
    for severity, n in rows.order_by():
        counts[severity] = counts.get(severity, 0) + n
    return counts


def acknowledged_open_alerts(now) -> int:
    """Unresolved alerts an acknowledgement holds at `now` (someone is on them). One query."""
    return AlertHistory.objects.filter(resolved_at__isnull=True, state__acknowledged_until__gt=now).count()


def alerts_for_job(job_id, *, limit: int | None = None) -> list[AlertHistory]:
    """Alerts raised for a job, and those its failure was counted into, newest first (the
    latest `limit` of them, if given). One query."""
    # A UNION of two index lookups, not `job_id = X OR id IN (...)`: Postgres can answer that OR
    # only by reading every alert (16 ms at 200,000 alerts, and growing) on each poll of a job.
    raised = AlertHistory.objects.filter(job_id=job_id).order_by().values("id")
    counted_in = AlertOccurrence.objects.filter(job_id=job_id).values("alert_id")
    alerts = AlertHistory.objects.filter(id__in=raised.union(counted_in))
    return list(with_alert_state(alerts).order_by("-triggered_at", "-id")[:limit])
