"""The job manager's operations over HTTP: submit, cancel, retry, pause and resume a job type
(under /api/jobs)."""

import re
from typing import Annotated, Any
from uuid import UUID

from django.http import HttpResponse
from django.utils.translation import ngettext
from ninja import Header, Query, Router, Schema, Status
from pydantic import BeforeValidator, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from jobs.idempotency import IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE
from jobs.manager import MAX_ATTEMPTS_LIMIT, JobNotFound, job_manager, require_known_job_type
from jobs.models import MAX_PAUSE_REASON_CHARS, Job
from jobs.registry import get_job_executor, registered_job_types
from monitoring.api_auth import requires
from monitoring.api_errors import (
    COMMON_ERRORS,
    IdempotencyConflictOut,
    JobConflictOut,
    NotPausedOut,
    SubmitErrorOut,
    error_responses,
    job_not_found,
    refuse_unknown_query_parameters,
)
from monitoring.permissions import CONTROL_JOBS, SUBMIT_JOBS, VIEW_JOBS
from monitoring.schemas import (
    DIGITS_ONLY,
    JobIdOrPrefix,
    JobSummaryOut,
    JobTypeName,
    JobTypePauseOut,
    KnownJobTypeName,
    Out,
)
from monitoring.selectors import job_id_by_id_or_prefix, job_summary, paused_job_types

router = Router(tags=["jobs"])


def _json_integer(value):
    # As JSON Schema has it: 5 and 5.0 are integers; true and "5" are not (pydantic would take them).
    if isinstance(value, (bool, str)):
        raise ValueError("must be a whole number")
    return value


class JobSubmitIn(Schema):
    model_config = ConfigDict(extra="forbid")

    job_type: JobTypeName = Field(description="A registered job type.", examples=["demo.sleep"])
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="The job type's parameters (checked by the job type; 256 KiB and 32 levels at most).",
        examples=[{"seconds": 5, "steps": 5}],
    )
    max_attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT), BeforeValidator(_json_integer)] | None = Field(
        default=None, description="Attempts before giving up (default: the job type's)."
    )


class PauseIn(Schema):
    model_config = ConfigDict(extra="forbid")

    job_type: KnownJobTypeName = Field(
        description="A registered job type, or one no longer registered whose jobs are still here; any other "
        "name is a 422 listing the known ones (a typo would pause nothing).",
        examples=["ai_matching"],
    )
    reason: str = Field(
        default="", max_length=MAX_PAUSE_REASON_CHARS, description="Why (shown beside the pause).", examples=["AI down"]
    )


class ResumeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    job_type: KnownJobTypeName = Field(
        description="A paused job type. A name neither registered nor in the history is a 422 listing the known ones.",
        examples=["ai_matching"],
    )


class PausedJobTypeOut(JobTypePauseOut):
    held: int = Field(description="Its queued jobs, waiting for the resume.")


class PauseOut(Out):
    detail: str
    already_paused: bool = Field(description="True when it was paused before this request, which changed nothing.")
    paused: list[PausedJobTypeOut] = Field(description="Every paused job type, this one included.")


class ResumeOut(Out):
    detail: str
    enqueued: int = Field(description="The held jobs queued again.")


class RetryQuery(Schema):
    # The bound inside the type: on `QueryInt | None`, Field(ge=1) reached the schema as an unknown
    # "ge" instead of "minimum" (schemathesis then sent attempt=-3 as valid).
    attempt: Annotated[int, Field(ge=1), DIGITS_ONLY] | None = Field(
        default=None,
        description="The attempt number you expect to start; a 409 if it is not next (guards against double clicks).",
    )


def document_job_types(openapi: dict) -> None:
    """Spell out the submit body per registered job type, with that type's parameters, so the
    docs and generated clients know them. Done each time the schema
    is built (config.api): job types register at start-up, and may later. Validation stays with
    the job types (jobs.registry)."""
    components = openapi["components"]["schemas"]
    common = components["JobSubmitIn"]["properties"]
    variants = []
    for job_type in registered_job_types():
        executor = get_job_executor(job_type)
        if executor.params:
            parameters = executor.params.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(parameters.pop("$defs", {}))
        else:
            parameters = {"type": "object", "additionalProperties": True}
        variants.append(
            {
                "type": "object",
                "title": job_type,
                "description": executor.description,
                "properties": {**common, "job_type": {"type": "string", "const": job_type}, "parameters": parameters},
                "required": ["job_type", "parameters"] if parameters.get("required") else ["job_type"],
                "additionalProperties": False,
            }
        )
    components["JobSubmitIn"] = {"title": "JobSubmitIn", "oneOf": variants}


def document_replay_header(openapi: dict, path_prefix: str) -> None:
    """The submit's 200 (a replay) says so in a header; ninja has no way to declare one."""
    replay = openapi["paths"][f"{path_prefix}jobs"]["post"]["responses"][200]
    replay["description"] = "The job an earlier submit with this `Idempotency-Key` made (a replay)."
    replay["headers"] = {
        "Idempotent-Replayed": {
            "description": "Always `true`: no job was made.",
            "schema": {"type": "string", "const": "true"},
        }
    }


def job_types_documented() -> tuple:
    """What document_job_types reads (each registered job type's executor: its parameters and
    description), to tell whether a schema it documented is still current."""
    return tuple(get_job_executor(job_type) for job_type in registered_job_types())


def _actor(request) -> str:
    """Who did it, for the job's timeline: the user, and the token's name when one was used."""
    token = getattr(request, "api_token", None)
    username = request.user.get_username()
    return f"{username} (API token {token.name!r})" if token else username


def _job_id(job_id: JobIdOrPrefix) -> UUID:
    """The job a whole id or a short id names: a 404 for none, a 409 listing them for several."""
    found = job_id_by_id_or_prefix(job_id)
    if found is None:
        raise job_not_found(job_id)
    return found


def _summary(job_id) -> Job:
    job = job_summary(job_id)
    if job is None:  # deleted meanwhile
        raise JobNotFound(f"job {job_id} not found")
    return job


_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def _idempotency_key(value: Any) -> str:
    if isinstance(value, str) and _IDEMPOTENCY_KEY.fullmatch(value):
        return value
    raise PydanticCustomError("idempotency_key", IDEMPOTENCY_KEY_RULE)


# The schema documents the rule _idempotency_key checks (whose message says it in words, not as a regex).
IdempotencyKeyHeader = Annotated[
    str,
    PlainValidator(_idempotency_key),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN}),
]


@router.post(
    "",
    response={
        201: JobSummaryOut,
        200: JobSummaryOut,
        **COMMON_ERRORS,
        **error_responses(400, 413),
        409: IdempotencyConflictOut,
        422: SubmitErrorOut,
    },
    auth=requires(SUBMIT_JOBS),
    summary="Submit a job",
)
def submit_job(
    request,
    response: HttpResponse,
    payload: JobSubmitIn,
    idempotency_key: IdempotencyKeyHeader | None = Header(
        None,
        alias="Idempotency-Key",
        description="1-255 printable ASCII characters, one per job you mean to make (a UUID does). The same key "
        "again within 24 hours, with the same body, answers the job it made (200, `Idempotent-Replayed: true`) "
        "instead of making another; with another body it is a 409 naming the job. Keys are per user.",
        examples=["8e03978e-40d5-43e8-bc93-6894a57f9324"],
    ),
):
    """Create a job and queue its first attempt. An unknown job type is a 422 listing the known
    ones; parameters the job type refuses are a 422 naming each field. With an `Idempotency-Key`
    already used for this request, the job it made (200, `Idempotent-Replayed: true`)."""
    refuse_unknown_query_parameters(request, None)
    job = job_manager.submit_job(
        payload.job_type,
        payload.parameters,
        max_attempts=payload.max_attempts,
        submitted_by=_actor(request),
        idempotency_key=idempotency_key,
        owner=request.user,
    )
    if job.replayed:
        response["Idempotent-Replayed"] = "true"
        return Status(200, job)
    return Status(201, job)


@router.post(
    "/{job_id}/cancel",
    # 413: a session's CSRF check reads a form body, refused past DATA_UPLOAD_MAX_MEMORY_SIZE.
    response={
        200: JobSummaryOut,
        **COMMON_ERRORS,
        **error_responses(404, 413),
        409: JobConflictOut,
        **error_responses(422),
    },
    auth=requires(CONTROL_JOBS),
    summary="Cancel a job",
)
def cancel_job(request, job_id: JobIdOrPrefix):
    """A queued or retrying job is cancelled at once; a running one gets `cancel_requested_at`
    and stops at its next progress report. A finished job is a 409 giving its `status`. `job_id` is its id or its
    short id (a 409 listing the jobs when it starts several jobs' ids)."""
    refuse_unknown_query_parameters(request, None)
    job_id = _job_id(job_id)
    job_manager.cancel_job_sync(job_id, by=_actor(request))
    return _summary(job_id)


@router.post(
    "/{job_id}/retry",
    # 413: a session's CSRF check reads a form body, refused past DATA_UPLOAD_MAX_MEMORY_SIZE.
    response={
        200: JobSummaryOut,
        **COMMON_ERRORS,
        **error_responses(404, 413),
        409: JobConflictOut,
        **error_responses(422),
    },
    auth=requires(CONTROL_JOBS),
    summary="Retry a job now",
)
def retry_job(request, job_id: JobIdOrPrefix, query: Query[RetryQuery]):
    """Queue the next attempt of a failed, cancelled or retrying job now, with a fresh retry
    budget. A queued, running or completed job is a 409 giving its `status`. `job_id` as for cancelling."""
    refuse_unknown_query_parameters(request, RetryQuery)
    job_id = _job_id(job_id)
    job_manager.retry_job_sync(job_id, query.attempt, by=_actor(request))
    return _summary(job_id)


@router.get(
    "/paused",
    response={200: list[PausedJobTypeOut], **COMMON_ERRORS, **error_responses(422)},
    auth=requires(VIEW_JOBS),
    summary="Paused job types",
)
def get_paused_job_types(request):
    """The paused job types, the oldest pause first, each with how many queued jobs it holds."""
    refuse_unknown_query_parameters(request, None)
    return paused_job_types()


@router.post(
    "/pause",
    response={200: PauseOut, **COMMON_ERRORS, **error_responses(400, 409, 413), 422: SubmitErrorOut},
    auth=requires(CONTROL_JOBS),
    summary="Pause a job type",
)
def pause_job_type(request, payload: PauseIn):
    """No job of the type starts until it is resumed: queued jobs, retries coming due and jobs
    submitted meanwhile wait queued; attempts running now finish. Idempotent: pausing a paused
    type changes nothing (`already_paused`)."""
    refuse_unknown_query_parameters(request, None)
    paused = job_manager.pause_job_type_sync(payload.job_type, by=_actor(request), reason=payload.reason)
    detail = f"{payload.job_type} paused" if paused else f"{payload.job_type} was already paused"
    return {"detail": detail, "already_paused": not paused, "paused": paused_job_types()}


@router.post(
    "/resume",
    response={200: ResumeOut, **COMMON_ERRORS, **error_responses(400, 413), 409: NotPausedOut, 422: SubmitErrorOut},
    auth=requires(CONTROL_JOBS),
    summary="Resume a paused job type",
)
def resume_job_type(request, payload: ResumeIn):
    """Each job the pause held is queued again at once. A type that is not paused is a 409 with
    `paused: false`; one
    that is neither registered nor in the history (a typo) a 422 listing the known ones, as for
    the pause."""
    refuse_unknown_query_parameters(request, None)
    enqueued = job_manager.resume_job_type_sync(payload.job_type, by=_actor(request))
    if enqueued is None:
        require_known_job_type(payload.job_type)  # a typo is a 422, as for the pause, not "not paused"
        # `paused` for a script to read, as a job action's 409 gives the job's `status`.
        return Status(409, {"detail": f"{payload.job_type} is not paused", "paused": False})
    held = ngettext("%d held job", "%d held jobs", enqueued) % enqueued
    return {"detail": f"{payload.job_type} resumed: {held} queued again", "enqueued": enqueued}
