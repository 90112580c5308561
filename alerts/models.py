import uuid

from django.db import models
from django.utils import timezone

from alerts.fields import TextArrayField
from jobs.db import DbNow, GenRandomUUID
from jobs.models import Job


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class AlertHistory(models.Model):
    """An alert raised for operators (the design's `alert_history`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=GenRandomUUID(), editable=False)
    alert_type = models.CharField(max_length=50)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    title = models.CharField(max_length=200)
    message = models.TextField()
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    triggered_at = models.DateTimeField(default=timezone.now, db_default=DbNow())
    resolved_at = models.DateTimeField(null=True, blank=True)
    recipients = TextArrayField(null=True, blank=True)
    notification_sent = models.BooleanField(null=True, default=False, db_default=False)
    escalated = models.BooleanField(null=True, default=False, db_default=False)
    created_at = models.DateTimeField(null=True, default=timezone.now, db_default=DbNow())

    class Meta:
        db_table = "alert_history"
        ordering = ["-triggered_at"]
        verbose_name = "alert"
        verbose_name_plural = "alerts"
        indexes = [
            # Open alerts, newest first (API, dashboard, escalation sweep).
            models.Index(
                fields=["-triggered_at"],
                name="alert_open_idx",
                condition=models.Q(resolved_at__isnull=True),
            ),
            models.Index(fields=["-triggered_at"], name="alert_triggered_idx"),
        ]

    def __str__(self):
        return f"[{self.severity}] {self.title}"


class AlertType(models.TextChoices):
    """The design's four alert types, one rule each (alerts/rules.py)."""

    JOB_FAILURE = "job_failure"
    PERFORMANCE_DEGRADATION = "performance_degradation"
    SYSTEM_HEALTH = "system_health"
    RESOURCE_UTILIZATION = "resource_utilization"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}


class AlertState(models.Model):
    """What alert_history's fixed columns cannot hold: deduplication, counts and resolution.

    One row per alert, written by alerts.manager and alerts.services only. `is_open` mirrors
    `alert.resolved_at IS NULL` so the database itself can refuse a second open alert with the
    same fingerprint (a unique index can only look at its own table's columns).
    """

    alert = models.OneToOneField(AlertHistory, primary_key=True, on_delete=models.CASCADE, related_name="state")
    # alert type + job type or check name: occurrences with the same one count into one open alert.
    fingerprint = models.CharField(max_length=200)
    is_open = models.BooleanField(default=True)
    occurrences = models.PositiveIntegerField(default=1)
    last_seen_at = models.DateTimeField(default=timezone.now)
    job_type = models.CharField(max_length=100, blank=True, default="")
    # The job of the latest occurrence (alert.job stays the first one). Its index serves job deletion.
    last_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The classified error (or the check's reading) of the latest occurrence, in one line.
    error_summary = models.CharField(max_length=500, blank=True, default="")
    # When notifications were last queued: a repeat waits REPEAT_AFTER_MINUTES after it.
    last_notified_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # "Someone is on it": while acknowledged_until is ahead, the alert is neither escalated nor
    # notified again as it keeps occurring (alerts.services.alert_acknowledge).
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # db_default: added to a table nodes of the previous release still write (docs/deployment.md, Upgrading).
    acknowledged_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    acknowledged_until = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    # Times its condition came back within ALERTS_FLAP_MINUTES of clearing by itself, and the
    # alert was reopened rather than a new one raised: more than 0 means it is flapping.
    reopened = models.PositiveIntegerField(default=0, db_default=0)
    resolution_reason = models.TextField(blank=True, default="")
    # What the rule saw (metric values, baselines, thresholds), for the operator.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "alert state"
        constraints = [
            # Deduplication: at most one open alert per fingerprint, whatever the number of
            # processes raising it at once (the loser of the race counts into the winner).
            models.UniqueConstraint(
                fields=["fingerprint"], condition=models.Q(is_open=True), name="alert_state_open_fingerprint_uniq"
            ),
        ]
        indexes = [
            # A flapping alert's closed state, found by its fingerprint when its condition comes
            # back (AlertManager._reopen_flapping): without it, each new alert read every state.
            models.Index(fields=["fingerprint"], condition=models.Q(is_open=False), name="alert_state_closed_fp_idx"),
        ]

    def __str__(self):
        return f"{self.fingerprint} x{self.occurrences}"


class AlertOccurrence(models.Model):
    """Each job counted into an alert, so a job's page finds the alert it was folded into."""

    # The unique (alert, job) index serves lookups by alert, alert_occurrence_job_idx those by job.
    alert = models.ForeignKey(AlertHistory, on_delete=models.CASCADE, related_name="occurrence_jobs", db_index=False)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+", db_index=False)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "job"], name="alert_occurrence_job_uniq")]
        indexes = [
            # alerts_for_job(job_id).
            models.Index(fields=["job"], name="alert_occurrence_job_idx"),
        ]


class DeliveryKind(models.TextChoices):
    ALERT = "alert"  # the alert was raised
    REPEAT = "repeat"  # it keeps occurring, past the repeat interval
    SEVERITY_RAISED = "severity_raised"  # an occurrence was worse than the alert so far
    ESCALATION = "escalation"  # unresolved past its severity's escalation time
    RESOLVED = "resolved"  # resolved: its condition cleared, or someone resolved it
    ACKNOWLEDGED = "acknowledged"  # someone said they are on it
    REOPENED = "reopened"  # its condition came back soon after it cleared by itself (flapping)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its (next) attempt at next_attempt_at
    SENDING = "sending"  # an attempt is in progress (claimed_at)
    SENT = "sent"
    FAILED = "failed"  # gave up: a permanent error, or every attempt failed
    CANCELLED = "cancelled"  # the alert was resolved before it could be delivered


class NotificationDelivery(models.Model):
    """One notification to one recipient, with every attempt's outcome: the delivery log."""

    # delivery_alert_idx serves lookups by alert.
    alert = models.ForeignKey(AlertHistory, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    kind = models.CharField(max_length=20, choices=DeliveryKind.choices)
    # Why this notification (send_notification's `message`), e.g. "Escalated: unresolved for 60 min".
    headline = models.CharField(max_length=200)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    recipient = models.TextField()
    channel = models.CharField(max_length=20)  # email, webhook, slack
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "notification deliveries"
        indexes = [
            # The sweep: pending deliveries that are due.
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due_idx",
                condition=models.Q(status=DeliveryStatus.PENDING),
            ),
            # The sweep: attempts whose worker was lost mid-send.
            models.Index(
                fields=["claimed_at"],
                name="delivery_sending_idx",
                condition=models.Q(status=DeliveryStatus.SENDING),
            ),
            # The health check's count of deliveries that gave up lately (alerts.deliveries_failed).
            models.Index(
                fields=["updated_at"],
                name="delivery_failed_idx",
                condition=models.Q(status=DeliveryStatus.FAILED),
            ),
            # An alert's deliveries, newest first (admin inline, last delivery error).
            models.Index(fields=["alert", "-updated_at"], name="delivery_alert_idx"),
        ]

    def __str__(self):
        return f"{self.kind} to {self.channel} ({self.status})"
