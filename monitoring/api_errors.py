"""One error format for the whole API, and the handlers that produce it.

    {"detail": "what went wrong", "errors": [{"field": "status", "message": "..."}]}

`errors` names each field at fault (query and path parameters by name, body fields by
their dotted path), empty when no particular field is.
"""

import json
import logging
from datetime import datetime
from typing import Literal
from uuid import UUID

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import ConfigDict, Field

from jobs.idempotency import IdempotencyKeyReused
from jobs.manager import AttemptNotNext, JobNotFound, JobStateConflict
from jobs.models import JobStatus
from jobs.payloads import RepeatedJsonKey
from jobs.registry import InvalidJobParameters, UnknownJobType, registered_job_types
from monitoring.forms import repeated_parameters, rule_message
from monitoring.pending import DATABASE_UNAVAILABLE
from monitoring.schemas import Out
from monitoring.selectors import AmbiguousJobId

logger = logging.getLogger(__name__)


class FieldError(Out):
    field: str = Field(
        description="The parameter or body field at fault; body fields as dotted paths.",
        examples=["status", "parameters.seconds"],
    )
    message: str = Field(examples=["Input should be 'queued', 'running' or 'retrying'"])


class ErrorOut(Out):
    detail: str = Field(description="What went wrong, in one sentence.", examples=["job 0b6f… not found"])
    errors: list[FieldError] = Field(default_factory=list, description="Each field at fault; may be empty.")


class SubmitErrorOut(ErrorOut):
    # known_job_types is in the answer only when the job type is unknown: not a required field.
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    known_job_types: list[str] | None = Field(
        default=None, description="Present when the job type is unknown: the job types that exist."
    )


class IdempotencyConflictOut(ErrorOut):
    """A submit's 409: its `Idempotency-Key` made a job for another request within 24 hours."""

    job_id: UUID = Field(description="The job the key made.")


class JobMatchOut(Out):
    id: UUID
    job_type: str
    status: str


class AmbiguousJobIdOut(ErrorOut):
    matches: list[JobMatchOut] = Field(description="The first 10 jobs whose id starts with the prefix, by id.")
    match_count: int = Field(description="How many jobs' ids start with it.", examples=[2])


class NotPausedOut(ErrorOut):
    """A resume's 409: the job type is not paused (another operator resumed it)."""

    paused: bool = Field(description="Always false: the type's pause state now, for a script to read.")


class JobConflictOut(ErrorOut):
    """A job action's 409: the job's state does not allow it, or its short id is several jobs'."""

    # status is in the answer only when the job's state refused the action; matches and
    # match_count only for a short id of several jobs.
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    status: JobStatus | None = Field(
        default=None,
        description="Present when the job's state refused the action: its status now (what `detail` says in words).",
        examples=["running"],
    )
    matches: list[JobMatchOut] | None = Field(
        default=None, description="Present when the short id starts several jobs' ids: the first 10, by id."
    )
    match_count: int | None = Field(
        default=None, description="Present with `matches`: how many jobs' ids start with it."
    )


class AlertConflictOut(ErrorOut):
    """An acknowledge's 409: the alert is resolved, nothing is left to act on; or it kept changing
    state under the request (resolved, then reopened by its condition, three times): try again."""

    # status and resolved_at are in the answer only when the alert is resolved: no one state
    # refused an alert that kept changing.
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    status: Literal["resolved"] | None = Field(
        default=None, description="Present when the alert is resolved: the state that refused the action."
    )
    resolved_at: datetime | None = Field(default=None, description="Present with `status`: when it was resolved.")


def job_not_found(job_id: UUID | str) -> JobNotFound:
    """The 404 of a job looked up by its id or its short id."""
    return JobNotFound(f"job {job_id} not found" if isinstance(job_id, UUID) else f"no job id starts with {job_id}")


def error_responses(*statuses: int) -> dict:
    """The `response=` entries documenting these error statuses of an operation."""
    return {status: ErrorOut for status in statuses}


# Every operation can answer these: a request Django refuses before the API sees it (400: too
# many fields, a bad Host), no credentials or permission (401, 403), the database down (503).
COMMON_ERRORS = error_responses(400, 401, 403, 503)


def error_response(
    api: NinjaAPI, request: HttpRequest, status: int, detail: str, errors=(), /, **extra
) -> HttpResponse:
    # Positional-only: an extra field of the answer may be called `status` (a job's).
    body = {"detail": detail, "errors": [{"field": e["field"], "message": e["message"]} for e in errors], **extra}
    return api.create_response(request, body, status=status)


def refuse_unknown_query_parameters(request: HttpRequest, schema: type[Schema] | None) -> None:
    """A 422 for query parameters the operation does not have: `?staus=failed` silently
    listing everything is worse than an error naming the typo. `schema` None: it has none."""
    known = list(schema.model_fields) if schema else []
    unknown = sorted(set(request.GET) - set(known))
    if unknown:
        message = f"unknown query parameter; known: {', '.join(known)}" if known else "takes no query parameters"
        raise ValidationError([{"loc": ("query", name), "msg": message} for name in unknown])


def refuse_repeated_query_parameters(data, list_fields) -> None:
    """A 422 for a query parameter that takes one value given more than once: neither the last
    one winning nor validation blaming the value's type ("Input should be a valid integer").
    Run by the API's query parser, before validation; a list parameter may repeat."""
    repeated = repeated_parameters(data, [name for name in data if name not in list_fields])
    if repeated:
        raise ValidationError([{"loc": ("query", name), "msg": message} for name, message in repeated.items()])


def _field_name(loc) -> str:
    """("query", "status") -> "status"; ("body", "payload", "parameters", "x") -> "parameters.x"."""
    source, *path = [str(part) for part in loc] or ["request"]
    if source == "body":
        # ninja nests the body under the handler's argument name; the client never sees it.
        path = path[1:]
    return ".".join(path) or source


def install_error_handlers(api: NinjaAPI) -> None:
    def on_validation_error(request, exc: ValidationError):
        errors = [
            {"field": _field_name(e.get("loc", ())), "message": rule_message(e.get("msg", "invalid"))}
            for e in exc.errors
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return error_response(api, request, 422, f"invalid request: {summary}", errors)

    def on_http_error(request, exc: HttpError):
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, RecursionError):
            return error_response(api, request, 400, "request body is nested too deeply", [_body("nested too deeply")])
        if exc.status_code == 400 and isinstance(cause, RepeatedJsonKey):
            field = {"field": cause.path, "message": cause.message}
            return error_response(api, request, 422, f"invalid request: {cause}", [field])
        if exc.status_code == 400 and isinstance(cause, (ValueError, UnicodeError)):
            message = f"not valid JSON: {cause}"
            return error_response(api, request, 400, f"request body is {message}", [_body(message)])
        response = error_response(api, request, exc.status_code, str(exc))
        if isinstance(exc, AuthenticationError):
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    def on_unauthenticated(request, exc: AuthenticationError):
        if type(exc) is AuthenticationError:  # ninja's own: no credential was accepted
            exc = AuthenticationError(
                message="authentication required: log in, or send 'Authorization: Bearer <token>'"
            )
        return on_http_error(request, exc)

    def on_unknown_job_type(request, exc: UnknownJobType):
        field = {"field": "job_type", "message": str(exc)}
        return error_response(api, request, 422, str(exc), [field], known_job_types=registered_job_types())

    def on_invalid_parameters(request, exc: InvalidJobParameters):
        return error_response(api, request, 422, str(exc), exc.errors)

    def on_idempotency_key_reused(request, exc: IdempotencyKeyReused):
        # 409, not the IETF draft's 422: the request is valid by itself (with a new key it makes
        # a job); it conflicts with what the key already made, the server's state, as every 409 here.
        field = {"field": "Idempotency-Key", "message": "used for another request; send a new key for a new job"}
        return error_response(api, request, 409, str(exc), [field], job_id=exc.job_id)

    def on_ambiguous_job_id(request, exc: AmbiguousJobId):
        field = {"field": "job_id", "message": f"the id of {exc.count} jobs starts with it; give more of the id"}
        return error_response(api, request, 409, str(exc), [field], matches=exc.matches, match_count=exc.count)

    def on_job_state_conflict(request, exc: JobStateConflict):
        errors = []
        if isinstance(exc, AttemptNotNext):  # the request's `attempt` is at fault
            errors = [{"field": "attempt", "message": f"attempt {exc.next_attempt} is next"}]
        # The job's status for a script to read, beside the sentence for a person.
        extra = {"status": exc.status} if exc.status else {}
        return error_response(api, request, 409, str(exc), errors, **extra)

    def on_database_unavailable(request, exc):
        logger.warning("API request failed, database unavailable: %s", exc)
        response = error_response(api, request, 503, "database unavailable; try again shortly")
        response["Retry-After"] = "5"
        return response

    def on_unexpected(request, exc: Exception):
        # Not Django's HTML 500 page: a client of the API reads the same JSON shape as for any
        # other error (a drill: the old schema under new code). The traceback goes to the log.
        if isinstance(exc, (SuspiciousOperation, PermissionDenied)):
            raise exc  # Django's own 400 and 403 (config.urls), in this same shape under /api/
        logger.exception("API request %s %s failed", request.method, request.path)
        return error_response(api, request, 500, "internal error: the server logged it; try again or report it")

    api.add_exception_handler(Exception, on_unexpected)
    api.add_exception_handler(ValidationError, on_validation_error)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(AuthenticationError, on_unauthenticated)
    api.add_exception_handler(Http404, lambda request, exc: error_response(api, request, 404, "not found"))
    api.add_exception_handler(JobNotFound, lambda request, exc: error_response(api, request, 404, str(exc)))
    api.add_exception_handler(JobStateConflict, on_job_state_conflict)
    api.add_exception_handler(AmbiguousJobId, on_ambiguous_job_id)
    api.add_exception_handler(IdempotencyKeyReused, on_idempotency_key_reused)
    api.add_exception_handler(UnknownJobType, on_unknown_job_type)
    api.add_exception_handler(InvalidJobParameters, on_invalid_parameters)
    api.add_exception_handler(
        RequestDataTooBig, lambda request, exc: error_response(api, request, 413, "request body too large")
    )
    # Django turns these into its 400 (config.urls.handler400) only when ninja passes them on,
    # which it does with DEBUG off; with DEBUG on it answered a 500 traceback instead.
    for exc_class in (TooManyFieldsSent, TooManyFilesSent):
        api.add_exception_handler(
            exc_class, lambda request, exc: error_response(api, request, 400, f"bad request: {exc}")
        )
    for exc_class in DATABASE_UNAVAILABLE:
        api.add_exception_handler(exc_class, on_database_unavailable)


def _body(message: str) -> dict:
    return {"field": "body", "message": message}


def json_error(status: int, detail: str) -> HttpResponse:
    """The same format outside ninja's views (unknown /api/ paths, the schema's own auth)."""
    return HttpResponse(json.dumps({"detail": detail, "errors": []}), status=status, content_type="application/json")
