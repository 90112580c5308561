"""Reads of job state for the controller, the API and the dashboard."""

from jobs.models import ACTIVE_STATUSES, Job

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
    "finished_at",
    "next_attempt_at",
    "cancel_requested_at",
    "worker",
    "error_class",
)


def active_jobs_queryset(*, job_type: str | None = None, status: str | None = None):
    """Queued, running and waiting-for-retry jobs, newest activity first (partial indexes)."""
    jobs = Job.objects.filter(status__in=ACTIVE_STATUSES)
    if job_type:
        jobs = jobs.filter(job_type=job_type)
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-updated_at").only(*JOB_SUMMARY_FIELDS)


def active_jobs(*, job_type: str | None = None, status: str | None = None, limit: int = 100) -> list[dict]:
    return list(active_jobs_queryset(job_type=job_type, status=status).values(*JOB_SUMMARY_FIELDS)[:limit])


def job_status(job_id) -> dict | None:
    return Job.objects.filter(id=job_id).values(*JOB_SUMMARY_FIELDS, "parameters", "result", "last_error").first()
