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
