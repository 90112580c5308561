import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from jobs.db import DbNow, GenRandomUUID


class JobStatus(models.TextChoices):
    QUEUED = "queued"  # handed to django-q2, waiting for a worker
    RUNNING = "running"
    RETRYING = "retrying"  # an attempt failed; the next one is due at next_attempt_at
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING)
FINISHED_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
RETRYABLE_STATUSES = (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.RETRYING)  # a manual retry's

# The dashboard lists active jobs running first, then retrying, then queued. One expression
# for the query and its index, so Postgres recognises the one in the other.
ACTIVE_LIST_RANK = models.Case(
    models.When(status=JobStatus.RUNNING, then=models.Value(0)),
    models.When(status=JobStatus.RETRYING, then=models.Value(1)),
    default=models.Value(2),
    output_field=models.IntegerField(),
)


class Job(models.Model):
    """A unit of background work (the `jobs` table the design's tables reference).

    The row is the source of truth for a job's state: every transition is a conditional
    UPDATE on it, so several workers on several machines never run one attempt twice.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job_type = models.CharField(max_length=100)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    # The last message reported (progress message or error summary), for lists.
    message = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts started so far.")
    max_attempts = models.PositiveIntegerField(default=3)
    submitted_by = models.CharField(max_length=150, blank=True, default="")

    created_at = models.DateTimeField(default=timezone.now)
    # Last change of any kind: "newest activity first" in the lists.
    updated_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True, help_text="Start of the first attempt.")
    attempt_started_at = models.DateTimeField(null=True, blank=True, help_text="Start of the current attempt.")
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Kept while the attempt runs: a running attempt queued after a job still waiting shows the
    # workers have passed that job's task (EnhancedJobManager.requeue_lost_jobs).
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When the current attempt was queued.")
    worker = models.CharField(max_length=255, blank=True, default="", help_text="host:pid of the worker running it.")

    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_delay = models.FloatField(null=True, blank=True, help_text="Planned seconds before the next attempt.")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    result = models.JSONField(null=True, blank=True)
    # {"type", "message", "error_class", "traceback", "fingerprint"} of the last failure.
    last_error = models.JSONField(null=True, blank=True)
    error_class = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        db_table = "jobs"
        ordering = ["-updated_at"]
        indexes = [
            # Active jobs list, newest activity first (API and dashboard); partial, so it
            # stays as small as the set of active jobs however long the history grows.
            models.Index(
                fields=["-updated_at"],
                name="jobs_active_recent_idx",
                condition=models.Q(status__in=ACTIVE_STATUSES),
            ),
            # The dashboard's list of active jobs in its own order (running, retrying, queued;
            # newest first): a page is read in order from here, instead of every active job
            # being read and sorted on each poll (docs/benchmark.md).
            models.Index(
                ACTIVE_LIST_RANK,
                models.F("created_at").desc(),
                models.F("id"),
                name="jobs_active_list_idx",
                condition=models.Q(status__in=ACTIVE_STATUSES),
            ),
            # ... the same filtered by type or by status.
            models.Index(
                fields=["job_type", "-updated_at"],
                name="jobs_active_type_idx",
                condition=models.Q(status__in=ACTIVE_STATUSES),
            ),
            models.Index(
                fields=["status", "-updated_at"],
                name="jobs_active_status_idx",
                condition=models.Q(status__in=ACTIVE_STATUSES),
            ),
            # Sweep for running jobs whose worker stopped sending heartbeats.
            models.Index(
                fields=["heartbeat_at"],
                name="jobs_running_heartbeat_idx",
                condition=models.Q(status=JobStatus.RUNNING),
            ),
            # A queued job's place in the queue (the dashboard's job page): an index-only count of
            # the jobs queued before it, where the active-jobs indexes read every queued row (11 ms
            # on each 2 s poll with 50,000 queued on Postgres; 0.2-3 ms from here).
            models.Index(
                fields=["queued_at"],
                name="jobs_queued_at_idx",
                condition=models.Q(status=JobStatus.QUEUED),
            ),
            # Dispatcher: retries that are due.
            models.Index(
                fields=["next_attempt_at"],
                name="jobs_retry_due_idx",
                condition=models.Q(status=JobStatus.RETRYING),
            ),
            # The type of a job found by id, from the index alone: the metrics look it up for
            # every outcome and attempt in their window (docs/benchmark.md).
            models.Index(fields=["id", "job_type"], name="jobs_id_type_idx"),
            # Admin's list of jobs, newest submitted first (JobAdmin.ordering): a page is read
            # from here, where ordering by updated_at sorted every job (245 ms at 200,000 on
            # Postgres); filtered by status, type or error class, it is walked until a page is found.
            models.Index(fields=["-created_at", "-id"], name="jobs_created_idx"),
            # ... filtered by error class: admin's count of the filtered list (up to 10,000) read
            # every job for a rare class (53 ms for 2,922 of 200,000), and so did its page. Jobs
            # that never failed are not in it.
            models.Index(
                fields=["error_class", "-created_at", "-id"],
                name="jobs_error_class_idx",
                condition=~models.Q(error_class=""),
            ),
            # Finished jobs by type and time (history lists, job queue health).
            models.Index(fields=["job_type", "-finished_at"], name="jobs_type_finished_idx"),
            models.Index(fields=["status", "-finished_at"], name="jobs_status_finished_idx"),
            # Finished jobs by their last error's fingerprint (the Errors page's "failed with it"):
            # a page costs the jobs it shows, not every failure of the window (a rare error among
            # 200,000 failures of 7 days, Postgres: 31 ms from jobs_status_finished_idx, 0.3 ms from
            # here). Jobs that never failed are not in it.
            models.Index(
                models.F("last_error__fingerprint"),
                models.F("status"),
                models.F("finished_at").desc(),
                name="jobs_error_finished_idx",
                condition=models.Q(last_error__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.job_type} {self.id}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class RetryStatus(models.TextChoices):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobRetryHistory(models.Model):
    """One row per attempt of a job (the design's `job_retry_history`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=GenRandomUUID(), editable=False)
    # The unique (job, attempt_number) index serves lookups by job.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempt_history", db_index=False)
    attempt_number = models.IntegerField()
    started_at = models.DateTimeField(default=timezone.now, db_default=DbNow())
    completed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=RetryStatus.choices)
    error_message = models.TextField(null=True, blank=True)
    # The delay planned before this attempt (None for the first one).
    retry_delay_seconds = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(null=True, default=timezone.now, db_default=DbNow())

    class Meta:
        db_table = "job_retry_history"
        ordering = ["job", "attempt_number"]
        verbose_name_plural = "job retry history"
        constraints = [
            # The database itself refuses a second row for the same attempt.
            models.UniqueConstraint(fields=["job", "attempt_number"], name="job_retry_history_attempt_uniq"),
        ]
        indexes = [
            # Attempts in a timeframe (metrics), with their job and number read from the index alone.
            models.Index(fields=["started_at", "job", "attempt_number"], name="job_retry_history_started_idx"),
        ]

    def __str__(self):
        return f"{self.job_id} attempt {self.attempt_number}"


MAX_PAUSE_REASON_CHARS = 500


class JobTypePause(models.Model):
    """A job type an operator paused: its queued jobs wait, none starts, until it is resumed
    (EnhancedJobManager.pause_job_type_sync / resume_job_type_sync). Attempts already running
    finish. One row per paused type: the database, not a worker's memory, says what is paused."""

    job_type = models.CharField(max_length=100, primary_key=True)
    paused_at = models.DateTimeField(default=timezone.now)
    paused_by = models.CharField(max_length=150, blank=True, default="")
    reason = models.TextField(blank=True, default="")

    class Meta:
        db_table = "job_type_pauses"
        ordering = ["job_type"]

    def __str__(self):
        return f"{self.job_type} paused"


class IdempotencyKey(models.Model):
    """A submit's `Idempotency-Key` and the job it made (jobs.idempotency): the same key from the
    same user within IDEMPOTENCY_KEY_TTL answers that job again instead of making a second one.
    Written in the job's own transaction, so a key never points to a job that was not committed."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="sha256 of the request's canonical JSON.")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "job_idempotency_keys"
        constraints = [
            # Keys are per user; on Postgres a second insert of one waits for the first's commit.
            models.UniqueConstraint(fields=["owner", "key"], name="job_idempotency_keys_owner_key"),
        ]
        indexes = [
            # prune_monitoring deletes the expired ones, oldest first.
            models.Index(fields=["created_at"], name="job_idem_keys_created_idx"),
        ]

    def __str__(self):
        return f"{self.key!r} → job {self.job_id}"
