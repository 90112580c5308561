"""Reads of job state shared by the controller, the API and the dashboard.

Every function here runs a bounded number of queries whatever the size of the history.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

from alerts.models import AlertHistory, AlertOccurrence, NotificationDelivery
from alerts.selectors import alerts_for_job, with_alert_state
from jobs.models import (
    ACTIVE_LIST_RANK,
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Job,
    JobRetryHistory,
    JobStatus,
    JobTypePause,
)
from monitoring.metrics import RATIO_DIGITS
from monitoring.models import EventType, JobExecutionLog
from monitoring.retention import earlier_events_pruned, events_pruned
from monitoring.timeline import needs_attention_q, retry_overdue

JOB_SUMMARY_FIELDS = (
    "id",
    "job_type",
    "status",
    "progress",
    "message",
    "attempts",
    "max_attempts",
    "created_at",
    "updated_at",
    "started_at",
    "attempt_started_at",
    "finished_at",
    "next_attempt_at",
    "cancel_requested_at",
    "heartbeat_at",
    "worker",
    "error_class",
)
MAX_TIMELINE_EVENTS = 500
# A job's events are read from its own range of job_logs_job_time_idx: deep pages cost little,
# yet a bound keeps a hand-made offset from scanning a runaway job's millions.
MAX_EVENT_OFFSET = 100_000


def active_jobs_queryset(*, job_type: str | None = None, status: str | None = None) -> QuerySet[Job]:
    """Queued, running and retrying jobs, newest activity first (served by partial indexes)."""
    jobs = Job.objects.filter(status__in=ACTIVE_STATUSES)
    if job_type:
        jobs = jobs.filter(job_type=job_type)
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-updated_at", "id").only(*JOB_SUMMARY_FIELDS)


def with_held(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """Each job with `held`: queued while its job type is paused, so it waits for the resume
    (in the same query: a primary-key probe of the pauses per row)."""
    paused = JobTypePause.objects.filter(job_type=OuterRef("job_type"))
    return jobs.annotate(held=ExpressionWrapper(Q(status=JobStatus.QUEUED) & Exists(paused), BooleanField()))


def active_jobs(*, job_type: str | None = None, status: str | None = None, limit: int = 100) -> list[dict]:
    return list(active_jobs_queryset(job_type=job_type, status=status).values(*JOB_SUMMARY_FIELDS)[:limit])


def job_summary(job_id) -> Job | None:
    """A job's row without its (possibly large) parameters, result and error."""
    return Job.objects.filter(id=job_id).only(*JOB_SUMMARY_FIELDS).first()


def job_status(job_id) -> dict | None:
    return Job.objects.filter(id=job_id).values(*JOB_SUMMARY_FIELDS, "parameters", "result", "last_error").first()


@dataclass
class JobDetail:
    job: Job
    events: list[JobExecutionLog]  # oldest first; the latest MAX_TIMELINE_EVENTS at most
    events_total: int
    attempts: list[JobRetryHistory]

    @property
    def events_truncated(self) -> bool:
        return self.events_total > len(self.events)

    @property
    def events_pruned(self) -> bool:
        """No event left, because retention deleted them (not because none was recorded)."""
        return not self.events and events_pruned(self.job)

    @property
    def earlier_events_pruned(self) -> bool:
        """Events left from a retry on only: retention deleted those of the attempts before it."""
        return (
            bool(self.events)
            and not self.events_truncated
            and earlier_events_pruned(self.events[0].timestamp, self.attempts)
        )

    @property
    def last_error_event(self) -> JobExecutionLog | None:
        return next((e for e in reversed(self.events) if e.error_details), None)


def job_detail(job_id) -> JobDetail | None:
    """A job in full: its row, its timeline (bounded), its attempts. Four queries."""
    job = Job.objects.filter(id=job_id).first()
    if job is None:
        return None
    events = JobExecutionLog.objects.filter(job_id=job.id)
    latest = list(events.order_by("-timestamp", "-created_at")[:MAX_TIMELINE_EVENTS])
    total = len(latest) if len(latest) < MAX_TIMELINE_EVENTS else events.count()
    attempts = list(JobRetryHistory.objects.filter(job_id=job.id).order_by("attempt_number"))
    return JobDetail(job=job, events=latest[::-1], events_total=total, attempts=attempts)


@dataclass
class EventPage:
    events: list[JobExecutionLog]  # oldest first
    total: int  # all the job's events


def job_events(job_id, *, offset: int, limit: int) -> EventPage:
    """A page of a job's whole timeline, oldest first: the events before the latest
    MAX_TIMELINE_EVENTS that job_detail shows too. A running job's new events come last, so its
    earlier pages stay put while it runs. Two queries on job_logs_job_time_idx."""
    events = JobExecutionLog.objects.filter(job_id=job_id)
    return EventPage(
        events=list(events.order_by("timestamp", "created_at", "id")[offset : offset + limit]),
        total=events.count(),
    )


@dataclass
class QueueWait:
    """Why a queued job has not started yet."""

    ahead: int | None  # jobs queued before it and still queued; None: its queue time is unknown
    worker_alive: bool
    worker_seen_at: datetime | None
    paused: JobTypePause | None = None  # its job type is paused: it waits for the resume
    # Workers alive, none running anything, and it waited a minute: its task most likely went to
    # a node that stopped before starting it. When the lost-job sweep queues it again.
    requeued_at: datetime | None = None


# An idle worker takes a task within a second or two: a minute with all of them idle is no queue.
STRANDED_AFTER = timedelta(minutes=1)


def queue_wait(job: Job, now: datetime) -> QueueWait:
    """How many jobs queued before this one still wait (the broker hands out the oldest task
    first; jobs held by a paused job type are not waiting before it), and whether a worker is
    alive as the health page and cluster_watchdog judge it (monitoring.health.worker_liveness),
    unless its own job type is paused; and whether its task looks stranded (QueueWait.requeued_at).
    Five queries at most."""
    from monitoring.health import worker_liveness  # the health checks' module: httpx, psutil...

    pauses = {pause.job_type: pause for pause in JobTypePause.objects.all()}  # a handful at most
    paused = pauses.get(job.job_type)
    ahead = None
    if job.queued_at is not None and paused is None:
        # An index-only count of the jobs ahead (jobs_queued_at_idx), however long the backlog,
        # unless a pause makes it read their job types.
        before = Job.objects.filter(status=JobStatus.QUEUED, queued_at__lt=job.queued_at)
        ahead = before.exclude(job_type__in=list(pauses)).count() if pauses else before.count()
    liveness = worker_liveness(now)
    requeued_at = None
    last_queued = job.updated_at  # a queued row's updated_at is when it was last enqueued
    if (
        liveness["alive"]
        and paused is None
        and last_queued is not None
        and now - last_queued >= STRANDED_AFTER
        and not Job.objects.filter(status=JobStatus.RUNNING).exists()
    ):
        # A drill: jobs whose tasks a killed node had taken waited 10 minutes, the page saying
        # "2 jobs queued before it are still waiting" while every worker was idle.
        requeued_at = last_queued + timedelta(seconds=settings.JOBS["REQUEUE_AFTER"])
    return QueueWait(
        ahead=ahead,
        worker_alive=liveness["alive"],
        worker_seen_at=liveness["last_seen_at"],
        paused=paused,
        requeued_at=requeued_at,
    )


@dataclass
class RetryLate:
    """Why a retry past its due time has not started: the cluster that dispatches it is not running."""

    overdue: float  # seconds past its due time
    worker_alive: bool
    worker_seen_at: datetime | None


def retry_late(job: Job, now: datetime) -> RetryLate | None:
    """A waiting retry no running cluster has dispatched (monitoring.timeline.retry_overdue), and
    whether a worker is alive as for a queued job (worker_liveness). Two queries, only when late."""
    from monitoring.health import worker_liveness  # the health checks' module: httpx, psutil...

    overdue = retry_overdue(job, now)
    if overdue is None:
        return None
    liveness = worker_liveness(now)
    return RetryLate(overdue=overdue, worker_alive=liveness["alive"], worker_seen_at=liveness["last_seen_at"])


# --- the dashboard's lists ----------------------------------------------------------------


def id_prefix_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID | None]:
    """[low, high) of the ids starting with these hex digits (dashes ignored): a range of the
    primary key's index, the same on Postgres (uuid) and SQLite (32 hex characters), where a
    LIKE on the id's text would read every row."""
    digits = prefix.replace("-", "").lower()
    low = uuid.UUID(digits.ljust(32, "0"))
    following = int(digits, 16) + 1
    if following >= 16 ** len(digits):  # all f: nothing comes after it
        return low, None
    return low, uuid.UUID(f"{following:0{len(digits)}x}".ljust(32, "0"))


def filter_by_id_prefix(rows: QuerySet, prefix: str, *, field: str = "id") -> QuerySet:
    """A whole id matches exactly; a shorter one (as copied from a log line or a list's short id)
    by prefix. `field` is the id's column: a job's own, or a row's job_id."""
    if len(prefix.replace("-", "")) == 32:
        # An equality, not a range of one id: an index on (job_id, timestamp) then serves a job's
        # events in time order (admin's list of a job's 20,000 events: 0.2 ms, not 1.1 s).
        return rows.filter(**{field: uuid.UUID(prefix)})
    low, high = id_prefix_range(prefix)
    rows = rows.filter(**{f"{field}__gte": low})
    return rows.filter(**{f"{field}__lt": high}) if high else rows


def active_job_list(
    *, job_type: str | None = None, status: str | None = None, job_id: str = "", attention_at: datetime | None = None
) -> QuerySet[Job]:
    """Active jobs for the dashboard's list, in a stable order: running, then retrying, then
    queued, newest first within each. Ordering by updated_at would reshuffle the rows on every
    progress report while an operator reads them. Sorting stays within the (partially indexed)
    set of active jobs, however long the history. `attention_at`: only the running jobs that
    need attention at that moment (timeline.needs_attention_q).
    """
    jobs = active_jobs_queryset(job_type=job_type, status=status)
    if job_id:
        jobs = filter_by_id_prefix(jobs, job_id)
    if attention_at is not None:
        jobs = jobs.filter(needs_attention_q(attention_at))
    # The order of the jobs_active_list_idx index: a page is read from it, not sorted.
    return with_held(jobs).order_by(ACTIVE_LIST_RANK, "-created_at", "id")


def finished_jobs(
    *,
    since: datetime,
    until: datetime | None = None,
    job_type: str | None = None,
    status: str | None = None,
    job_id: str = "",
    error: str = "",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Job], bool]:
    """Jobs finished since `since` (and up to `until`, if given), newest first: `limit` of them
    from `offset`, and whether there are more. `error`: only those whose last error has that
    fingerprint. `until` pins the list for paging: jobs finishing later do not shift it.

    One range scan of the (status, finished_at) index per finished status, each stopping after
    offset + limit + 1 rows, merged here: no COUNT and no sort of the whole window, so a page
    costs the same with a thousand jobs a day or a million (on Postgres with 500,000 jobs,
    0.2 ms instead of 31 ms for one query over all three statuses).
    """
    wanted = offset + limit + 1
    found: list[Job] = []
    for each in [status] if status else FINISHED_STATUSES:
        jobs = Job.objects.filter(status=each, finished_at__gte=since)
        if until is not None:
            jobs = jobs.filter(finished_at__lte=until)
        if job_type:
            jobs = jobs.filter(job_type=job_type)
        if job_id:
            jobs = filter_by_id_prefix(jobs, job_id)
        if error:
            # A filter on the rows of the window's range scan: at most the window's jobs of that status.
            jobs = jobs.filter(last_error__fingerprint=error)
        found.extend(jobs.order_by("-finished_at", "id").only(*JOB_SUMMARY_FIELDS)[:wanted])
    found.sort(key=lambda job: (-job.finished_at.timestamp(), str(job.id)))
    return found[offset : offset + limit], len(found) > offset + limit


def still_failed_jobs(*, since: datetime, job_type: str | None = None, error: str = "") -> QuerySet[Job]:
    """Jobs that failed for good since `since` and are failed still: the failed-jobs list's jobs.
    A job retried by hand since is queued, running or finished otherwise, and no longer one of
    them; the outcome metrics still count its failure for good (history a retry does not change),
    so the pages show the two figures apart. `job_type`, `error` (their last error's fingerprint):
    only those."""
    jobs = Job.objects.filter(status=JobStatus.FAILED, finished_at__gte=since)
    if job_type:
        jobs = jobs.filter(job_type=job_type)
    if error:
        jobs = jobs.filter(last_error__fingerprint=error)
    return jobs


def failed_jobs_count(*, since: datetime, error: str, cap: int) -> int:
    """Jobs failed for good since `since` whose last error has the fingerprint `error`, counted up
    to `cap`: the failed list's range scan with that filter (as finished_jobs reads it), stopped there."""
    return still_failed_jobs(since=since, error=error).order_by()[:cap].count()


def failed_jobs_counts(*, since: datetime, errors: list[str], job_type: str | None = None, cap: int) -> dict[str, int]:
    """failed_jobs_count for each fingerprint of `errors` (the Errors page's ten groups at most) in
    one query grouped by fingerprint, each up to `cap`; a fingerprint with none is left out. Each
    group's jobs are counted whole, read from jobs_error_finished_idx: the window's failed jobs
    with those errors, not every failure of the window."""
    rows = (
        still_failed_jobs(since=since, job_type=job_type)
        .filter(last_error__fingerprint__in=errors)
        .values(fingerprint=KT("last_error__fingerprint"))
        .annotate(jobs=Count("id"))
        .order_by()
    )
    return {row["fingerprint"]: min(row["jobs"], cap) for row in rows}


def active_job_counts() -> dict:
    """Active jobs by status and by type: one GROUP BY over the (small) set of active jobs.

    {"total": n, "by_status": {status: n}, "by_type": [{"job_type", "total", <status>: n}]}
    """
    active = Job.objects.filter(status__in=ACTIVE_STATUSES).order_by()
    rows = active.values_list("job_type", "status").annotate(n=Count("id"))
    by_status = {status: 0 for status in ACTIVE_STATUSES}
    by_type: dict[str, dict] = {}
    for job_type, status, n in rows:
        by_status[status] += n
        entry = by_type.setdefault(job_type, {"job_type": job_type, "total": 0} | {s: 0 for s in ACTIVE_STATUSES})
        entry[status] += n
        entry["total"] += n
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_type": sorted(by_type.values(), key=lambda entry: (-entry["total"], entry["job_type"])),
    }


def with_held_jobs(pauses: QuerySet[JobTypePause]) -> QuerySet[JobTypePause]:
    """Each pause with `held`: its job type's queued jobs waiting for the resume (a count per
    type over the active jobs' partial index, in the same query)."""
    held = (
        Job.objects.filter(job_type=OuterRef("job_type"), status=JobStatus.QUEUED)
        .order_by()
        .values("job_type")
        .annotate(n=Count("id"))
        .values("n")
    )
    return pauses.annotate(held=Coalesce(Subquery(held), 0))


def paused_job_types() -> list[JobTypePause]:
    """The paused job types, the first paused first, each with `held` (with_held_jobs). One query."""
    return list(with_held_jobs(JobTypePause.objects.all()).order_by("paused_at", "job_type"))


def pause_of(job_type: str) -> JobTypePause | None:
    """The job type's pause, if it is paused. One query."""
    return JobTypePause.objects.filter(job_type=job_type).first()


def paused_among(job_types) -> list[str]:
    """Which of `job_types` are paused, in name order. One query."""
    return list(JobTypePause.objects.filter(job_type__in=list(job_types)).values_list("job_type", flat=True))


def needs_attention_count(now: datetime) -> int:
    """Running jobs flagged by the lists (too quiet, near their timeout, heartbeat late): one
    COUNT over the running jobs' partial index."""
    return Job.objects.filter(needs_attention_q(now)).count()


def recent_failures(*, since: datetime, limit: int = 10) -> tuple[list[Job], int]:
    """Jobs still failed that failed for good since `since` (still_failed_jobs), newest first, and how many."""
    failed = still_failed_jobs(since=since)
    return list(failed.order_by("-finished_at", "id").only(*JOB_SUMMARY_FIELDS)[:limit]), failed.count()


WORKER_WINDOW = timedelta(hours=1)
# A host is flagged when its latest attempts failed at least this often (and this many of them),
# and at least twice as often as the other hosts' together: a node whose environment is broken
# fails every job it takes while the others succeed.
SUSPECT_HOST_FAILURE_SHARE = 0.5
SUSPECT_HOST_MIN_FAILURES = 5


def worker_hosts(now: datetime, *, window: timedelta = WORKER_WINDOW) -> list[dict]:
    """The hosts that ran jobs lately, from each job's `worker` (host:pid of the worker running its
    latest attempt): their worker processes, the jobs running there now, and how the latest
    attempts that ended there within `window` went (`failed` counts jobs failed for good and jobs
    waiting to be retried; a job that failed on one host and succeeded on another counts for the
    second). Hosts in name order; `suspect` when a host fails far more than the others.

    One query: over the active jobs' partial indexes and the (status, finished_at) index.
    """
    since = now - window
    running = Q(status=JobStatus.RUNNING)
    failed = Q(status=JobStatus.FAILED) | Q(status=JobStatus.RETRYING)
    ended_lately = Q(status__in=FINISHED_STATUSES, finished_at__gte=since) | Q(
        status=JobStatus.RETRYING, updated_at__gte=since
    )
    rows = (
        Job.objects.filter(running | ended_lately)
        .exclude(worker="")
        .values("worker")
        .annotate(
            running=Count("id", filter=running),
            succeeded=Count("id", filter=Q(status=JobStatus.COMPLETED)),
            failed=Count("id", filter=failed),
            last_heartbeat=Max("heartbeat_at"),
            last_change=Max("updated_at"),
        )
        .order_by()
    )
    hosts: dict[str, dict] = {}
    for row in rows:
        host_name, _, pid = row["worker"].rpartition(":")
        host = hosts.setdefault(
            host_name or row["worker"],
            {"host": host_name or row["worker"], "processes": [], "running": 0, "succeeded": 0, "failed": 0},
        )
        if host_name:  # "host:pid", as jobs.manager.worker_id writes it
            host["processes"].append(pid)
        for key in ("running", "succeeded", "failed"):
            host[key] += row[key]
        seen = max(filter(None, (row["last_heartbeat"], row["last_change"])), default=None)
        host["last_seen"] = max(filter(None, (host.get("last_seen"), seen)), default=None)
    total_failed = sum(host["failed"] for host in hosts.values())
    total_ended = sum(host["failed"] + host["succeeded"] for host in hosts.values())
    for host in hosts.values():
        ended = host["failed"] + host["succeeded"]
        share = host["failed"] / ended if ended else None
        others_ended = total_ended - ended
        others_share = (total_failed - host["failed"]) / others_ended if others_ended else None
        host["suspect"] = (
            host["failed"] >= SUSPECT_HOST_MIN_FAILURES
            and share >= SUSPECT_HOST_FAILURE_SHARE
            and others_share is not None
            and share >= 2 * others_share
        )
        # Judged on the exact shares; given to 4 decimals, as the metrics' success_rate.
        host["failure_share"] = None if share is None else round(share, RATIO_DIGITS)
        host["others_failure_share"] = None if others_share is None else round(others_share, RATIO_DIGITS)
        host["processes"].sort(key=lambda pid: (len(pid), pid))
    return sorted(hosts.values(), key=lambda host: host["host"])


MAX_ID_MATCHES = 10


def jobs_by_id_prefix(prefix: str, *, limit: int = MAX_ID_MATCHES) -> list[dict]:
    """[{"id", "job_type", "status"}] of up to `limit` jobs, in any status, whose id starts with
    `prefix` (hex digits): to point a search at jobs outside the list searched."""
    matching = filter_by_id_prefix(Job.objects.all(), prefix).order_by("id")
    return list(matching.values("id", "job_type", "status")[:limit])


class AmbiguousJobId(Exception):
    """Several jobs' ids start with the prefix given: the first MAX_ID_MATCHES of them, and how many."""

    def __init__(self, prefix: str, matches: list[dict], count: int):
        listed = ", ".join(f"{job['id']} ({job['job_type']}, {job['status']})" for job in matches)
        more = f", and {count - len(matches)} more" if count > len(matches) else ""
        super().__init__(f"{count} jobs have an id starting with {prefix}: {listed}{more}; give more of the id")
        self.prefix, self.matches, self.count = prefix, matches, count


def job_detail_by_id_or_prefix(job_id: uuid.UUID | str) -> JobDetail | None:
    """job_detail() of a whole id, or of the one job whose id starts with `job_id` (hex digits, as
    an operator copies a short id from an alert): None when no job's does, AmbiguousJobId when
    several do. A prefix costs one query more than a whole id, a range of the primary key's index
    (a second, counting the range, only when it holds MAX_ID_MATCHES jobs or more)."""
    job_id = job_id_by_id_or_prefix(job_id)
    return job_detail(job_id) if job_id is not None else None


def job_earlier_events_pruned(job_id, first_event: JobExecutionLog) -> bool:
    """JobDetail.earlier_events_pruned for a page of job_events() starting at the job's first
    event left: its timeline starts at a retry, the events before it pruned. One query."""
    attempts = JobRetryHistory.objects.filter(job_id=job_id).only("completed_at")
    return earlier_events_pruned(first_event.timestamp, attempts)


def job_events_by_id_or_prefix(job_id: uuid.UUID | str, *, offset: int, limit: int) -> EventPage | None:
    """job_events() of a whole id or a short one, as job_detail_by_id_or_prefix finds it: None
    when no job has it."""
    if isinstance(job_id, str):
        job_id = _job_id_by_prefix(job_id)
        return job_events(job_id, offset=offset, limit=limit) if job_id is not None else None
    found = job_events(job_id, offset=offset, limit=limit)
    # No event: a job whose events were all pruned, or no job at all (a query only then).
    return found if found.total or Job.objects.filter(id=job_id).exists() else None


def job_id_by_id_or_prefix(job_id: uuid.UUID | str) -> uuid.UUID | None:
    """The id of the job a whole id or a short one names (a whole id as given, unchecked): for a
    short id, the one job whose id starts with it, None when none does, AmbiguousJobId when
    several do."""
    return _job_id_by_prefix(job_id) if isinstance(job_id, str) else job_id


def _job_id_by_prefix(prefix: str) -> uuid.UUID | None:
    matches = jobs_by_id_prefix(prefix)
    if len(matches) > 1:
        count = len(matches)
        if count == MAX_ID_MATCHES:
            count = filter_by_id_prefix(Job.objects.all(), prefix).count()
        raise AmbiguousJobId(prefix, matches, count)
    return matches[0]["id"] if matches else None


def active_jobs_page(
    *,
    job_type: str | None = None,
    status: str | None = None,
    attention_at: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], bool]:
    """One page of active jobs, and whether more follow. `attention_at`: only the running jobs
    that need attention at that moment (timeline.needs_attention_q).

    One query: it reads a row past the page to know whether there is a next one, instead
    of counting every active job on each poll.
    """
    jobs = active_jobs_queryset(job_type=job_type, status=status)
    if attention_at is not None:
        jobs = jobs.filter(needs_attention_q(attention_at))
    return page(with_held(jobs), limit=limit, offset=offset)


def page(rows: QuerySet, *, limit: int, offset: int) -> tuple[list, bool]:
    """`limit` rows from `offset`, and whether more follow.

    Reads one row past the page to know whether there is a next one: a list polled every
    few seconds must not COUNT its whole history each time.
    """
    found = list(rows[offset : offset + limit + 1])
    return found[:limit], len(found) > limit


def last_error_event(detail: JobDetail) -> JobExecutionLog | None:
    """The event that recorded the job's last error (with its traceback), even when more
    than MAX_TIMELINE_EVENTS events came after it."""
    if not detail.job.last_error:
        return None
    return detail.last_error_event or (
        JobExecutionLog.objects.filter(job_id=detail.job.id, error_details__isnull=False)
        .order_by("-timestamp", "-created_at")
        .first()
    )


MAX_JOB_ALERTS = 100


def job_alerts(job_id, *, limit: int = MAX_JOB_ALERTS) -> list[AlertHistory]:
    """A job's alerts, newest first: those raised for it and those its failure was counted
    into, with their state (occurrences, last seen...). The API and the dashboard both call this."""
    return alerts_for_job(job_id, limit=limit)


# An error group's alerts shown on the Errors page; the others are counted ("and 12 more").
MAX_GROUP_ALERTS = 3

# Ranks each error group's alerts in the database, so only the few shown are loaded (every one
# was, with its state: 27,000 alerts and 6.6 s for the 30-day window of a 50,000-alert history).
# An alert is counted once per group whether it was raised for a failed job or counted one (UNION).
_GROUP_ALERTS_SQL = """
    WITH failed (fingerprint, job_id) AS ({failed}),
    pairs (fingerprint, alert_id) AS (
        SELECT f.fingerprint, o.alert_id FROM failed f JOIN alerts_alertoccurrence o ON o.job_id = f.job_id
        UNION
        SELECT f.fingerprint, a.id FROM failed f JOIN alert_history a ON a.job_id = f.job_id
    ),
    ranked AS (
        SELECT p.fingerprint, p.alert_id, count(*) OVER (PARTITION BY p.fingerprint) AS alerts,
               row_number() OVER (
                   PARTITION BY p.fingerprint ORDER BY a.resolved_at IS NOT NULL, a.triggered_at DESC, a.id
               ) AS place
        FROM pairs p JOIN alert_history a ON a.id = p.alert_id
    )
    SELECT fingerprint, alert_id, alerts FROM ranked WHERE place <= %s ORDER BY fingerprint, place
"""


def error_group_alerts(
    fingerprints: list[str], *, since: datetime, until: datetime, limit: int = MAX_GROUP_ALERTS
) -> dict[str, dict]:
    """The alerts raised by, or counting, the failures of each error group (errors with this
    fingerprint in [since, until)): {fingerprint: {"alerts": [alert, ...], "count": int}}, the
    first `limit` alerts (open ones first, then newest) and how many there are in all.

    Two queries whatever the number of failures and alerts: the groups' alerts ranked (through
    alerts_alertoccurrence for the jobs counted into an alert, alert_history.job_id for the one
    an alert was raised for), then the alerts shown with their state.
    """
    if not fingerprints:
        return {}
    failed = (
        JobExecutionLog.objects.annotate(fingerprint=KT("error_details__fingerprint"))
        .filter(event_type=EventType.ERROR, timestamp__gte=since, timestamp__lt=until)
        .filter(error_details__fingerprint__in=list(fingerprints))  # KT's __in fails on SQLite ("malformed JSON")
        .values_list("fingerprint", "job_id")
        .order_by()
        .distinct()
    )
    failed_sql, params = failed.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(_GROUP_ALERTS_SQL.format(failed=failed_sql), [*params, limit])
        ranked = [(fp, AlertHistory._meta.pk.to_python(alert_id), count) for fp, alert_id, count in cursor.fetchall()]
    shown = with_alert_state(AlertHistory.objects.filter(id__in={alert_id for _, alert_id, _ in ranked}))
    alerts = {alert.id: alert for alert in shown}
    grouped: dict[str, dict] = {}
    for fingerprint, alert_id, count in ranked:  # in each group's order
        grouped.setdefault(fingerprint, {"alerts": [], "count": count})["alerts"].append(alerts[alert_id])
    return grouped


# --- one alert's page ----------------------------------------------------------------------

MAX_ALERT_DELIVERIES = 20
MAX_ALERT_JOBS = 10


def alert_deliveries(alert_id, *, limit: int = MAX_ALERT_DELIVERIES) -> list[NotificationDelivery]:
    """An alert's notifications, newest first (the delivery_alert_idx index)."""
    return list(NotificationDelivery.objects.filter(alert_id=alert_id).order_by("-updated_at", "-id")[:limit])


def alert_jobs(alert_id, *, limit: int = MAX_ALERT_JOBS) -> list[dict]:
    """The latest jobs counted into an alert: [{"job_id", "job_type", "status", "seen_at"}], newest first.

    Newest by id (rows are added in time order): the primary key read backwards stops after
    `limit` rows, where sorting on seen_at would read every occurrence of a long-running alert.
    """
    return list(
        AlertOccurrence.objects.filter(alert_id=alert_id)
        .order_by("-id")
        .values("job_id", "seen_at", job_type=F("job__job_type"), status=F("job__status"))[:limit]
    )
