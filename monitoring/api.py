"""The design's monitoring endpoints, under /api/monitoring/."""

from uuid import UUID

from ninja import Query, Router

from jobs.manager import JobNotFound
from monitoring.api_auth import requires
from monitoring.api_errors import AUTH_ERRORS, error_responses, refuse_unknown_query_parameters
from monitoring.permissions import VIEW_JOBS
from monitoring.schemas import JobDetailOut, JobListQuery, JobPageOut
from monitoring.selectors import active_jobs_page, job_alerts, job_detail, last_error_event

router = Router(tags=["monitoring"])


@router.get(
    "/jobs",
    response={200: JobPageOut, **AUTH_ERRORS, **error_responses(422)},
    auth=requires(VIEW_JOBS),
    summary="Active jobs",
)
def get_active_jobs(request, filters: Query[JobListQuery]):
    """Queued, running and retrying jobs, newest activity first. Page with `limit` and `offset`:
    follow `next_offset` until it is null."""
    refuse_unknown_query_parameters(request, JobListQuery)
    items, next_offset = active_jobs_page(
        job_type=filters.job_type, status=filters.status, limit=filters.limit, offset=filters.offset
    )
    return {"items": items, "limit": filters.limit, "offset": filters.offset, "next_offset": next_offset}


@router.get(
    "/jobs/{job_id}",
    response={200: JobDetailOut, **AUTH_ERRORS, **error_responses(404, 422)},
    auth=requires(VIEW_JOBS),
    summary="One job in full",
)
def get_job_details(request, job_id: UUID):
    """Parameters, status, progress, attempts and timings, the event timeline, the retry
    history with planned and actual waits, the last error with its class, hint and traceback,
    and the job's alerts."""
    detail = job_detail(job_id)
    if detail is None:
        raise JobNotFound(f"job {job_id} not found")
    return JobDetailOut.build(detail, error_event=last_error_event(detail), alerts=job_alerts(job_id))
