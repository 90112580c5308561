import uuid
from datetime import timedelta

from django.db import models
from django.utils import timezone

from jobs.db import DbNow, GenRandomUUID
from jobs.models import Job


class EventType(models.TextChoices):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    CANCEL_REQUESTED = "cancel_requested"
    ERROR = "error"
    RETRY = "retry"  # the next attempt was dispatched after its delay
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# Each attempt ends with exactly one of these.
TERMINAL_EVENT_TYPES = (EventType.COMPLETED, EventType.ERROR, EventType.CANCELLED)


class JobExecutionLog(models.Model):
    """Every step of every job (the design's `job_execution_logs`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=GenRandomUUID(), editable=False)
    # The (job, timestamp) index serves lookups by job.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs", db_index=False)
    event_type = models.CharField(max_length=50, choices=EventType.choices)
    timestamp = models.DateTimeField(default=timezone.now, db_default=DbNow())
    status = models.CharField(max_length=20)
    progress = models.IntegerField(null=True, default=0, db_default=0)
    message = models.TextField(null=True, blank=True)
    details = models.JSONField(null=True, blank=True)
    # {"type", "message", "traceback", "error_class", "retryable", "fingerprint"}, and for a failed
    # call to an HTTP service "service_origin" (scheme://host:port) and "http_status" if it answered.
    error_details = models.JSONField(null=True, blank=True)
    execution_time_ms = models.IntegerField(null=True, blank=True)
    memory_usage_mb = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(null=True, default=timezone.now, db_default=DbNow())

    class Meta:
        db_table = "job_execution_logs"
        ordering = ["timestamp"]
        indexes = [
            # A job's timeline.
            models.Index(fields=["job", "timestamp"], name="job_logs_job_time_idx"),
            # Metrics over a timeframe read only the attempts' outcomes: a partial index
            # keeps the cost proportional to the outcomes inside the window. It holds every
            # column the counts and execution times need, so Postgres reads them from the
            # index alone (index-only scans: no visit to the table's scattered pages).
            models.Index(
                fields=["timestamp", "job", "event_type", "status", "execution_time_ms"],
                name="job_logs_outcome_time_idx",
                condition=models.Q(event_type__in=TERMINAL_EVENT_TYPES),
            ),
            # Error analysis over a timeframe (errors by class and type, top errors) reads
            # only the failed attempts, a small share of the outcomes.
            models.Index(
                fields=["timestamp"],
                name="job_logs_error_time_idx",
                condition=models.Q(event_type=EventType.ERROR),
            ),
            # Retention deletes by age.
            models.Index(fields=["timestamp"], name="job_logs_time_idx"),
        ]

    def __str__(self):
        return f"{self.event_type} {self.job_id} {self.timestamp:%Y-%m-%d %H:%M:%S}"


class HealthStatus(models.TextChoices):
    HEALTHY = "healthy"
    WARNING = "warning"
    CRITICAL = "critical"


class MetricType(models.TextChoices):
    DATABASE = "database"
    API = "api"
    RESOURCE = "resource"
    JOB_QUEUE = "job_queue"


class SystemHealthMetric(models.Model):
    """One health check result (the design's `system_health_metrics`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=GenRandomUUID(), editable=False)
    timestamp = models.DateTimeField(default=timezone.now, db_default=DbNow())
    metric_type = models.CharField(max_length=50, choices=MetricType.choices)
    metric_name = models.CharField(max_length=100)
    metric_value = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=20, choices=HealthStatus.choices)
    details = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(null=True, default=timezone.now, db_default=DbNow())

    class Meta:
        db_table = "system_health_metrics"
        ordering = ["-timestamp"]
        indexes = [
            # Latest result per component and its recent history.
            models.Index(fields=["metric_type", "metric_name", "-timestamp"], name="health_component_time_idx"),
            # Retention deletes by age.
            models.Index(fields=["timestamp"], name="health_time_idx"),
            # Admin's results filtered by a warning or critical status, newest first: counted and
            # paged from here, where the count read the whole table and the page walked every
            # healthy row (EXPLAIN ANALYZE, 691,000 rows on Postgres: 26-81 ms; now 0.1-4 ms). Healthy
            # results, 95 % of the rows, are not in it: the time index finds them at once.
            models.Index(
                fields=["status", "-timestamp", "-id"],
                name="health_status_time_idx",
                condition=~models.Q(status=HealthStatus.HEALTHY),
            ),
        ]

    def __str__(self):
        return f"{self.metric_type}/{self.metric_name} {self.status}"


# A token expiring within this is "expires soon" in admin, and in the health check when it is in use.
EXPIRES_SOON = timedelta(days=7)


class TokenStatus(models.TextChoices):
    ACTIVE = "active", "active"
    EXPIRES_SOON = "expires_soon", "expires soon"
    EXPIRED = "expired", "expired"
    REVOKED = "revoked", "revoked"


class ApiToken(models.Model):
    """A secret that lets a program call the API as its user, with that user's permissions.

    Only the sha256 of the token is stored: a leaked database does not leak working tokens.
    The token is shown once, when created (`manage.py create_api_token`). It stops working when
    revoked or once `expires_at` has passed (NULL: never expires).
    """

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What uses it, e.g. 'platform backend'.")
    description = models.TextField(blank=True, default="")
    # The unique index serves the lookup on every authenticated request.
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters of the token, so an operator can tell tokens apart.
    prefix = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # NULL: never expires (tokens created before expiry existed kept working). A leaked token
    # should not work forever: new ones expire after tokens.DEFAULT_LIFETIME unless told otherwise.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_tokens"
        ordering = ["-created_at"]
        verbose_name = "API token"
        indexes = [
            # The health check's "used lately, expiring soon" (api_tokens.expiring): the tokens
            # used in the last days are few however many expired or unused ones pile up.
            models.Index(
                fields=["last_used_at"],
                name="api_tokens_expiring_idx",
                condition=models.Q(revoked_at__isnull=True, expires_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…, {self.user})"

    def status(self, now) -> str:
        """active, expires soon (within EXPIRES_SOON), expired or revoked, as seen at `now`."""
        if self.revoked_at is not None:
            return TokenStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return TokenStatus.EXPIRED
        if self.expires_at is not None and self.expires_at <= now + EXPIRES_SOON:
            return TokenStatus.EXPIRES_SOON
        return TokenStatus.ACTIVE

    def is_expired(self, now) -> bool:
        return self.expires_at is not None and self.expires_at <= now
