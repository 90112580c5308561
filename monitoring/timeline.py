"""A job's events and attempts shaped for reading: what happened, when, and how long it took."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from jobs.models import Job, JobRetryHistory, JobStatus
from jobs.registry import job_types_by_timeout, timeout_for
from monitoring.models import TERMINAL_EVENT_TYPES, EventType, JobExecutionLog


@dataclass
class TimelineRow:
    event_type: str
    timestamp: datetime
    status: str
    message: str
    attempt: int | None
    progress: int | None
    execution_time_ms: int | None
    memory_usage_mb: int | None
    # Seconds since the previous row, and since the first event shown.
    since_previous: float | None
    since_start: float
    # A run of consecutive progress reports is shown as one row.
    count: int = 1
    progress_from: int | None = None
    until: datetime | None = None
    error_details: dict | None = None
    new_day: bool = False  # the first row, or the date changed since the previous one

    @property
    def is_group(self) -> bool:
        return self.count > 1


def _attempt_of(event: JobExecutionLog) -> int | None:
    details = event.details if isinstance(event.details, dict) else {}
    attempt = details.get("attempt")
    return attempt if isinstance(attempt, int) else None


def timeline_rows(events: list[JobExecutionLog], *, group_progress: bool = True) -> list[TimelineRow]:
    """Events oldest first; consecutive progress reports of one attempt collapse into one row
    ("progress 10 % → 90 %, 58 reports"), so a long job's timeline still reads at a glance
    (`group_progress`; the page of all its events shows each)."""
    rows: list[TimelineRow] = []
    start = events[0].timestamp if events else None
    attempt = None
    for event in events:
        # Progress reports may not name their attempt: they belong to the latest one seen.
        attempt = _attempt_of(event) or attempt
        previous = rows[-1] if rows else None
        if (
            group_progress
            and previous is not None
            and event.event_type == EventType.PROGRESS
            and previous.event_type == EventType.PROGRESS
            and previous.attempt == attempt
        ):
            previous.count += 1
            previous.until = event.timestamp
            previous.progress = event.progress
            previous.message = event.message or previous.message
            previous.execution_time_ms = event.execution_time_ms or previous.execution_time_ms
            previous.memory_usage_mb = event.memory_usage_mb or previous.memory_usage_mb
            continue
        last_seen = (previous.until or previous.timestamp) if previous else None
        rows.append(
            TimelineRow(
                event_type=event.event_type,
                timestamp=event.timestamp,
                status=event.status,
                message=event.message or "",
                attempt=attempt,
                progress=event.progress,
                progress_from=event.progress,
                execution_time_ms=event.execution_time_ms,
                memory_usage_mb=event.memory_usage_mb,
                since_previous=(event.timestamp - last_seen).total_seconds() if last_seen else None,
                since_start=(event.timestamp - start).total_seconds(),
                error_details=event.error_details if isinstance(event.error_details, dict) else None,
                new_day=last_seen is None or last_seen.date() != event.timestamp.date(),
            )
        )
    return rows


@dataclass
class AttemptRow:
    attempt: JobRetryHistory
    duration: float | None  # seconds the attempt ran
    planned_delay: int | None  # seconds the retry policy planned before it
    waited: float | None  # seconds from the previous attempt's end to this one's start


def attempt_rows(attempts: list[JobRetryHistory], events: list[JobExecutionLog] = ()) -> list[AttemptRow]:
    """`events`: the job's events at hand. An attempt's outcome event says how long it ran, as the
    timeline shows it; an attempt taken back from a lost worker ran until its last heartbeat, not
    until the sweep ended it (its completed_at, from which the retry's wait is measured). An attempt
    retried by hand waited from its request (its retry event), not from the failure before it: the
    job sat failed meanwhile, and "60 s" beside "+2.7 s started" in the timeline read as a slow queue."""
    measured = {
        _attempt_of(event): event.execution_time_ms / 1000
        for event in events
        if event.event_type in TERMINAL_EVENT_TYPES and event.execution_time_ms is not None
    }
    requested = {
        _attempt_of(event): event.timestamp
        for event in events
        if event.event_type == EventType.RETRY and isinstance(event.details, dict) and event.details.get("manual")
    }
    rows = []
    previous = None
    for attempt in attempts:
        duration = waited = None
        if attempt.completed_at and attempt.started_at:
            duration = measured.get(attempt.attempt_number, (attempt.completed_at - attempt.started_at).total_seconds())
        since = requested.get(attempt.attempt_number) or (previous.completed_at if previous is not None else None)
        if since and attempt.started_at:
            waited = (attempt.started_at - since).total_seconds()
        rows.append(AttemptRow(attempt, duration, attempt.retry_delay_seconds, waited))
        previous = attempt
    return rows


# A running attempt is flagged when it has used this share of its timeout (past it, the worker
# stops it with JobTimeoutError)...
NEAR_TIMEOUT_SHARE = 0.8
# ... or has sent no progress report (Job.updated_at) for this share of its timeout, and at least
# MIN_SILENCE_SECONDS: a job that reports nothing for long is likely stuck and bound to time out...
SILENCE_SHARE = 0.25
MIN_SILENCE_SECONDS = 60
# ... or its worker missed this many heartbeats in a row: it may have died or lost the database
# (the attempt is taken back once the heartbeat is JOBS_STALE_AFTER old; this says so before).
MISSED_HEARTBEATS = 3


def silence_limit(timeout: float) -> float:
    return max(MIN_SILENCE_SECONDS, SILENCE_SHARE * timeout)


def heartbeat_late_after() -> float:
    return MISSED_HEARTBEATS * settings.JOBS["HEARTBEAT_INTERVAL"]


@dataclass
class AttemptClock:
    """A running attempt against its job type's timeout (jobs.registry.timeout_for)."""

    timeout: int  # seconds the attempt may run
    elapsed: float  # seconds since the attempt started
    silent: float  # seconds since its last progress report (or its start)
    heartbeat_age: float | None = None  # seconds since its worker's last heartbeat

    @property
    def left(self) -> float:
        return self.timeout - self.elapsed

    @property
    def overdue(self) -> float:
        return -self.left

    @property
    def used(self) -> float:
        return self.elapsed / self.timeout if self.timeout else 0.0

    @property
    def near_timeout(self) -> bool:
        return self.used >= NEAR_TIMEOUT_SHARE

    @property
    def too_quiet(self) -> bool:
        return self.silent >= silence_limit(self.timeout)

    @property
    def heartbeat_late(self) -> bool:
        return self.heartbeat_age is not None and self.heartbeat_age >= heartbeat_late_after()

    @property
    def stale_after(self) -> float:
        return settings.JOBS["STALE_AFTER"]

    @property
    def warning(self) -> bool:
        return self.near_timeout or self.too_quiet or self.heartbeat_late


# A running cluster queues a due retry within JOBS["DISPATCH_INTERVAL"] (half a second, jobs/brokers.py);
# one due for longer than this is not being dispatched: no cluster runs, or it is stuck.
RETRY_DISPATCH_GRACE = timedelta(seconds=10)


def retry_overdue(job: Job, now: datetime) -> float | None:
    """Seconds a waiting retry is past its due time, once no dispatcher can be on its way to it;
    None while it is on time. No query: the fields are the lists'."""
    if job.status != JobStatus.RETRYING or job.next_attempt_at is None:
        return None
    late = now - job.next_attempt_at
    return late.total_seconds() if late > RETRY_DISPATCH_GRACE else None


def attempt_number(job: Job) -> int:
    """The attempt a job is at: the one running or last run, or a queued job's coming one
    (`attempts` counts the attempts started: a job retried by hand read 1 while attempt 2 was queued)."""
    return job.attempts + 1 if job.status == JobStatus.QUEUED else job.attempts


def attempt_label(job: Job) -> str:
    """Which attempt the job is at (attempt_number), of how many, in words that hold in every
    state: "2 of 4 (queued)", "2 of 4 (running)", "1 of 4 failed, 2 next", "3 of 3 used"."""
    of = f"of {job.max_attempts}"
    if job.status == JobStatus.QUEUED:
        return f"{attempt_number(job)} {of} (queued)"
    if job.status == JobStatus.RUNNING:
        return f"{job.attempts} {of} (running)"
    if job.status == JobStatus.RETRYING:
        return f"{job.attempts} {of} failed, {job.attempts + 1} next"
    if not job.attempts:  # cancelled before its first attempt
        return f"none {of} started"
    return f"{job.attempts} {of} used"


def attempt_clock(job: Job, now: datetime) -> AttemptClock | None:
    """How a running attempt stands against its timeout; None for a job not running. No query:
    the fields are the lists' (selectors.JOB_SUMMARY_FIELDS), the timeout is the registry's."""
    if job.status != JobStatus.RUNNING or job.attempt_started_at is None:
        return None
    # Every progress report sets updated_at; heartbeats do not (they set heartbeat_at).
    last_report = max(job.updated_at, job.attempt_started_at)
    return AttemptClock(
        timeout=timeout_for(job.job_type),
        elapsed=(now - job.attempt_started_at).total_seconds(),
        silent=(now - last_report).total_seconds(),
        heartbeat_age=(now - job.heartbeat_at).total_seconds() if job.heartbeat_at else None,
    )


# The same judgements as filters, for counting and listing flagged jobs in the database. Each
# compares with the job type's timeout: one condition per distinct timeout, and the default for
# any type neither registered nor configured.


def _per_timeout(condition: Callable[[float], Q]) -> Q:
    grouped, default = job_types_by_timeout()
    known = [job_type for job_types in grouped.values() for job_type in job_types]
    matches = ~Q(job_type__in=known) & condition(default)
    for timeout, job_types in grouped.items():
        matches |= Q(job_type__in=job_types) & condition(timeout)
    return Q(status=JobStatus.RUNNING, attempt_started_at__isnull=False) & matches


def too_quiet_q(now: datetime) -> Q:
    """Running attempts that AttemptClock.too_quiet flags."""

    def silent_since(timeout: float) -> Q:
        before = now - timedelta(seconds=silence_limit(timeout))
        return Q(updated_at__lte=before, attempt_started_at__lte=before)

    return _per_timeout(silent_since)


def needs_attention_q(now: datetime) -> Q:
    """Running attempts that AttemptClock.warning flags: too quiet, near their timeout, or
    their worker's heartbeat late."""

    def flagged(timeout: float) -> Q:
        quiet_before = now - timedelta(seconds=silence_limit(timeout))
        return Q(updated_at__lte=quiet_before, attempt_started_at__lte=quiet_before) | Q(
            attempt_started_at__lte=now - timedelta(seconds=NEAR_TIMEOUT_SHARE * timeout)
        )

    late_before = now - timedelta(seconds=heartbeat_late_after())
    return _per_timeout(flagged) | Q(
        status=JobStatus.RUNNING, attempt_started_at__isnull=False, heartbeat_at__lte=late_before
    )
