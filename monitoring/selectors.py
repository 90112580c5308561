"""Reads of job state shared by the controller, the API and the dashboard.

Every function here runs a bounded number of queries whatever the size of the history.
"""

from dataclasses import dataclass

from django.db.models import QuerySet

from alerts.models import AlertHistory
from jobs.models import ACTIVE_STATUSES, Job, JobRetryHistory
from monitoring.models import JobExecutionLog

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
    "worker",
    "error_class",
)
MAX_TIMELINE_EVENTS = 500


def active_jobs_queryset(*, job_type: str | None = None, status: str | None = None) -> QuerySet[Job]:
    """Queued, running and retrying jobs, newest activity first (served by partial indexes)."""
    jobs = Job.objects.filter(status__in=ACTIVE_STATUSES)
    if job_type:
        jobs = jobs.filter(job_type=job_type)
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-updated_at", "id").only(*JOB_SUMMARY_FIELDS)


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


def active_jobs_page(
    *, job_type: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Job], int | None]:
    """One page of active jobs and the offset of the next page (None on the last one).

    One query: it reads a row past the page to know whether there is a next one, instead
    of counting every active job on each poll.
    """
    rows = list(active_jobs_queryset(job_type=job_type, status=status)[offset : offset + limit + 1])
    return rows[:limit], (offset + limit if len(rows) > limit else None)


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
    """A job's alerts, newest first."""
    # TODO: use alerts.selectors.alerts_for_job once the alerts app provides it.
    return list(AlertHistory.objects.filter(job_id=job_id).order_by("-triggered_at")[:limit])
