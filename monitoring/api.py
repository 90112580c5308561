"""The design's monitoring endpoints, under /api/monitoring/."""

import hashlib
from datetime import UTC
from uuid import UUID

from django.http import HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from ninja import Query, Router, Status
from ninja.errors import HttpError, ValidationError
from pydantic import BaseModel
from pydantic import ValidationError as SchemaValidationError

from alerts.models import AlertHistory
from alerts.selectors import alert_list
from alerts.services import AlertKeptChanging, alert_acknowledge, alert_act, alert_resolve
from jobs import clock
from jobs.manager import require_known_job_type
from jobs.payloads import loads_refusing_repeated_keys
from monitoring.api_auth import requires
from monitoring.api_errors import (
    COMMON_ERRORS,
    AlertConflictOut,
    AmbiguousJobIdOut,
    SubmitErrorOut,
    error_responses,
    job_not_found,
    refuse_unknown_query_parameters,
)
from monitoring.forms import FINISHED_WINDOWS
from monitoring.health import current_health
from monitoring.metrics import performance_metrics
from monitoring.permissions import RESOLVE_ALERTS, VIEW_ALERTS, VIEW_HEALTH, VIEW_JOBS, VIEW_METRICS
from monitoring.schemas import (
    MAX_EVENT_OFFSET,
    MAX_FINISHED_OFFSET,
    MAX_OFFSET,
    AlertAcknowledgeIn,
    AlertAcknowledgeOut,
    AlertListQuery,
    AlertPageOut,
    AlertResolveIn,
    AlertResolveOut,
    EventPageOut,
    EventPageQuery,
    FinishedJobListQuery,
    FinishedJobPageOut,
    HealthOut,
    JobDetailOut,
    JobIdOrPrefix,
    JobListQuery,
    JobPageOut,
    MetricsQuery,
    PerformanceMetricsOut,
    page_out,
)
from monitoring.selectors import (
    active_jobs_page,
    finished_jobs,
    job_alerts,
    job_detail_by_id_or_prefix,
    job_events_by_id_or_prefix,
    last_error_event,
    page,
    pause_of,
    worker_hosts,
)

router = Router(tags=["monitoring"])


@router.get(
    "/jobs",
    response={200: JobPageOut, **COMMON_ERRORS, **error_responses(422)},
    auth=requires(VIEW_JOBS),
    summary="Active jobs",
)
def get_active_jobs(request, filters: Query[JobListQuery]):
    """Queued, running and retrying jobs, newest activity first. Page with `limit` and `offset`:
    follow `next_offset` until it is null."""
    refuse_unknown_query_parameters(request, JobListQuery)
    items, more = active_jobs_page(
        job_type=filters.job_type,
        status=filters.status,
        attention_at=clock.now() if filters.attention else None,
        limit=filters.limit,
        offset=filters.offset,
    )
    return page_out(items, more, limit=filters.limit, offset=filters.offset, max_offset=MAX_OFFSET)


def _list_end(until):
    """Where a newest-first list ends: the `until` its first page answered, or now (a later
    one than now is now). To the millisecond, as the answer gives it back: a row of the dropped
    microseconds would be on the first page and not in the list the next pages read."""
    now = clock.now()
    now = now.replace(microsecond=now.microsecond - now.microsecond % 1000)
    return min(until, now) if until else now


@router.get(
    "/jobs/finished",
    response={200: FinishedJobPageOut, **COMMON_ERRORS, **error_responses(422)},
    auth=requires(VIEW_JOBS),
    summary="Recently finished jobs",
)
def get_finished_jobs(request, filters: Query[FinishedJobListQuery]):
    """Completed, failed and cancelled jobs that finished within `window`, most recent first:
    what failed in the last hour. Page with `limit` and `offset`: follow `next_offset`, sending
    the first page's `until` along so that jobs finishing meanwhile do not shift the pages."""
    refuse_unknown_query_parameters(request, FinishedJobListQuery)
    # Newest first: without a fixed end, each job finishing between two pages pushes a row of
    # the page read onto the next one (a drill paging at 5 a page read 6 of 37 rows twice).
    until = _list_end(filters.until)
    items, more = finished_jobs(
        since=until - FINISHED_WINDOWS[filters.window],
        until=until,
        job_type=filters.job_type,
        status=filters.status,
        error=filters.error or "",
        offset=filters.offset,
        limit=filters.limit,
    )
    listed = page_out(items, more, limit=filters.limit, offset=filters.offset, max_offset=MAX_FINISHED_OFFSET)
    return listed | {"until": until}


@router.get(
    "/jobs/{job_id}",
    response={
        200: JobDetailOut,
        304: None,
        **COMMON_ERRORS,
        **error_responses(404),
        409: AmbiguousJobIdOut,
        **error_responses(422),
    },
    auth=requires(VIEW_JOBS),
    summary="One job in full, by its id or its short id",
)
def get_job_details(request, response: HttpResponse, job_id: JobIdOrPrefix):
    """Parameters, status, progress, attempts and timings, the event timeline, the retry
    history with planned and actual waits, the last error with its class, hint and traceback,
    and the job's alerts.

    For polling: the answer has an `ETag`; sent back as `If-None-Match`, an answer that has not
    changed since is a 304 without a body.

    `job_id` is the job's id, or its first 8 hex digits or more (the short id of alerts and of
    the dashboard; any case, with or without the id's dashes). A prefix of several jobs' ids is
    a 409 listing them (the first 10, in `matches`): send more of the id."""
    refuse_unknown_query_parameters(request, None)
    detail = job_detail_by_id_or_prefix(job_id)
    if detail is None:
        raise job_not_found(job_id)
    # Alerts have their own permission: without it, the list is empty (as GET /alerts is a 403).
    alerts = job_alerts(detail.job.id) if request.user.has_perm(VIEW_ALERTS) else []
    answer = JobDetailOut.build(
        detail, error_event=last_error_event(detail), alerts=alerts, pause=pause_of(detail.job.job_type)
    )
    etag = _etag(answer)
    if _none_match_lists(request, etag):
        not_modified = HttpResponseNotModified()
        not_modified["ETag"] = etag
        return not_modified
    response["ETag"] = etag
    return answer


def _etag(answer: BaseModel) -> str:
    """A weak ETag of everything the answer says (its heartbeat, alerts and pause included, which
    change without the job's updated_at): a tag names one answer, never a stale one."""
    return 'W/"{}"'.format(hashlib.sha256(answer.model_dump_json().encode()).hexdigest()[:32])


def _none_match_lists(request, etag: str) -> bool:
    """Whether If-None-Match names `etag` (weak comparison, as RFC 9110 has it for this header) or is *."""
    sent = {tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))}
    return "*" in sent or etag.removeprefix("W/") in sent


@router.get(
    "/jobs/{job_id}/events",
    response={
        200: EventPageOut,
        **COMMON_ERRORS,
        **error_responses(404),
        409: AmbiguousJobIdOut,
        **error_responses(422),
    },
    auth=requires(VIEW_JOBS),
    summary="A job's whole timeline, page by page",
)
def get_job_events(request, job_id: JobIdOrPrefix, filters: Query[EventPageQuery]):
    """Every event of the job, oldest first, `limit` at a time (500 at most): the job's detail
    shows only the latest 500. Follow `next_offset` until it is null. `job_id` as for the job's
    detail (its id or short id)."""
    refuse_unknown_query_parameters(request, EventPageQuery)
    found = job_events_by_id_or_prefix(job_id, offset=filters.offset, limit=filters.limit)
    if found is None:
        raise job_not_found(job_id)
    more = filters.offset + len(found.events) < found.total
    listed = page_out(found.events, more, limit=filters.limit, offset=filters.offset, max_offset=MAX_EVENT_OFFSET)
    return listed | {"total": found.total}


@router.get(
    "/health",
    response={200: HealthOut, **COMMON_ERRORS, **error_responses(422)},
    auth=requires(VIEW_HEALTH),
    summary="System health",
)
def get_system_health(request):
    """Each component's latest check (database, external services, resources, job queue) and
    the overall status, the worst of them. The checks run on a schedule; `checked_at` says
    when they last did. Once they stopped (`stale`) and no worker has been seen either
    (`no_worker`), the overall status is critical: the stored results are old news. `workers`:
    the hosts that ran jobs in the last hour, a host failing far more than the others flagged."""
    refuse_unknown_query_parameters(request, None)
    now = clock.now()
    return {**current_health(now), "workers": worker_hosts(now)}


@router.get(
    "/metrics",
    response={200: PerformanceMetricsOut, **COMMON_ERRORS, 422: SubmitErrorOut},
    auth=requires(VIEW_METRICS),
    summary="Performance metrics",
)
def get_performance_metrics(request, query: Query[MetricsQuery]):
    """What the jobs did in the last `timeframe`, overall and per job type: attempts, outcomes,
    success rate, throughput and execution-time percentiles; errors by class and type, the most
    frequent errors; a time series for charts. Computed in the database, whatever the amount of
    history. A `job_type` neither registered nor in the history (a typo, which would answer zeros)
    is a 422 listing the known ones. With `error`, the figures are of that error group only."""
    refuse_unknown_query_parameters(request, MetricsQuery)
    if query.job_type is not None:
        require_known_job_type(query.job_type)
    return performance_metrics(query.timeframe, job_type=query.job_type, error=query.error)


@router.get(
    "/alerts",
    response={200: AlertPageOut, **COMMON_ERRORS, **error_responses(422)},
    auth=requires(VIEW_ALERTS),
    summary="Active alerts",
)
def get_active_alerts(request, filters: Query[AlertListQuery]):
    """Unresolved alerts, newest first (`include_resolved=true`: all of them; `unacknowledged=true`:
    the unresolved ones nobody acknowledged), each with its occurrences, when it was last seen,
    whether it was notified or escalated, who acknowledged or resolved it, its job and the last
    notification error. Page with `limit` and `offset`: follow
    `next_offset` until it is null."""
    refuse_unknown_query_parameters(request, AlertListQuery)
    until = _list_end(filters.until)
    alerts = alert_list(
        include_resolved=filters.include_resolved,
        severity=filters.severity,
        alert_type=filters.alert_type,
        unacknowledged_at=clock.now() if filters.unacknowledged else None,
        until=until,
    )
    items, more = page(alerts, limit=filters.limit, offset=filters.offset)
    return page_out(items, more, limit=filters.limit, offset=filters.offset, max_offset=MAX_OFFSET) | {"until": until}


def _utc(moment) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _alert(alert_id: UUID) -> AlertHistory:
    alert = alert_list(include_resolved=True).filter(id=alert_id).first()
    if alert is None:
        raise HttpError(404, f"alert {alert_id} not found")
    return alert


def _act(action, alert_id: UUID, **kwargs) -> tuple[bool, AlertHistory]:
    """Resolve or acknowledge (alerts.services.alert_act): whether it acted, and the alert as it is now."""
    try:
        acted, alert = alert_act(action, alert=_alert(alert_id), shown=alert_list(include_resolved=True), **kwargs)
    except AlertKeptChanging:
        raise HttpError(409, f"alert {alert_id} kept changing state; try again") from None
    if alert is None:
        raise HttpError(404, f"alert {alert_id} not found")
    return acted, alert


def _optional_body(request, schema: type[BaseModel]) -> BaseModel:
    """The optional JSON body, validated (a 422 naming each field at fault, unknown ones too).

    Read as JSON whatever its content type, as POST /api/jobs reads its body: `curl -d` labels
    JSON a form, and a body skipped for its label would act without the reason it gave. Read
    here rather than as a ninja body parameter, which would make the body required; a multipart
    form's body was consumed by the session's CSRF check and cannot be read at all."""
    if request.content_type == "multipart/form-data":
        if request.FILES or any(name != "csrfmiddlewaretoken" for name in request.POST):
            raise HttpError(415, "send the body as JSON (Content-Type: application/json), or no body")
        return schema()  # an empty form: no body
    if not request.body:
        return schema()
    try:  # as the API's parser reads a body: the same 400 for bad JSON, a repeated key refused
        data = loads_refusing_repeated_keys(request.body)
    except (ValueError, RecursionError) as e:
        raise HttpError(400, "Cannot parse request body") from e
    if not isinstance(data, dict):  # pydantic would say "… or instance of AlertResolveIn", a class of ours
        raise ValidationError([{"loc": ("body", "payload"), "msg": "Input should be a valid dictionary"}])
    try:
        return schema.model_validate(data)
    except SchemaValidationError as e:
        errors = [{"loc": ("body", "payload", *error["loc"]), "msg": error["msg"]} for error in e.errors()]
        raise ValidationError(errors) from None


@router.post(
    "/alerts/{alert_id}/resolve",
    response={200: AlertResolveOut, **COMMON_ERRORS, **error_responses(400, 404, 409, 413, 415, 422)},
    auth=requires(RESOLVE_ALERTS),
    summary="Resolve an alert",
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": AlertResolveIn.model_json_schema()}},
        }
    },
)
def resolve_alert(request, alert_id: UUID):
    """Mark the alert resolved, recording who did it; notifications still waiting to be sent
    are cancelled. Idempotent: an alert already resolved stays as it was, and the answer
    (still 200) says when and by whom it was resolved."""
    refuse_unknown_query_parameters(request, None)
    token = getattr(request, "api_token", None)
    default = f"resolved through the API with token {token.name!r}" if token else "resolved through the API"
    reason = _optional_body(request, AlertResolveIn).reason.strip() or default
    resolved, alert = _act(alert_resolve, alert_id, user=request.user, reason=reason)  # whoever resolved it
    if resolved:
        detail = f"alert {alert_id} resolved"
    else:
        by = f"by {alert.resolved_by}" if alert.resolved_by else "automatically (its condition cleared)"
        detail = f"alert {alert_id} was already resolved at {_utc(alert.resolved_at)} {by}"
    return {"detail": detail, "already_resolved": not resolved, "alert": alert}


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response={
        200: AlertAcknowledgeOut,
        **COMMON_ERRORS,
        **error_responses(400, 404, 413, 415, 422),
        409: AlertConflictOut,
    },
    auth=requires(RESOLVE_ALERTS),
    summary="Acknowledge an alert",
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": AlertAcknowledgeIn.model_json_schema()}},
        }
    },
)
def acknowledge_alert(request, alert_id: UUID):
    """Say someone is on it: for `ALERTS_ACKNOWLEDGE_MINUTES` (60) the alert is neither escalated
    nor notified again as it keeps occurring; still open after that, both resume. Acknowledging
    again renews it from now. A worse occurrence (severity raised) ends it. A resolved alert is
    a 409 (`status: resolved`, with `resolved_at`): nothing is left to hold. No body, or `{}`:
    how long it holds is the setting's."""
    refuse_unknown_query_parameters(request, None)
    _optional_body(request, AlertAcknowledgeIn)
    acknowledged, alert = _act(alert_acknowledge, alert_id, user=request.user)
    if not acknowledged:
        detail = f"alert {alert_id} was resolved at {_utc(alert.resolved_at)}: nothing to acknowledge"
        return Status(409, {"detail": detail, "errors": [], "status": "resolved", "resolved_at": alert.resolved_at})
    return {"detail": f"alert {alert_id} acknowledged until {_utc(alert.acknowledged_until)}", "alert": alert}
