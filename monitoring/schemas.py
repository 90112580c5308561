"""What the monitoring API answers: typed, documented, built from the selectors' results."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from ninja import Schema
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic import ValidationError as SchemaValidationError
from pydantic_core import PydanticCustomError

from alerts.models import Severity
from alerts.services import MAX_REASON_CHARS
from jobs.errors import ErrorType
from jobs.models import ACTIVE_STATUSES, FINISHED_STATUSES, JobStatus, RetryStatus
from jobs.payloads import printable
from jobs.registry import JobTypeName, registered_job_types
from monitoring.forms import ERROR_FINGERPRINT_MESSAGE, FINISHED_WINDOWS
from monitoring.metrics import TIMEFRAMES, UnknownTimeframe
from monitoring.models import EventType, HealthStatus, MetricType
from monitoring.selectors import MAX_EVENT_OFFSET, MAX_TIMELINE_EVENTS, JobDetail

MAX_PAGE_SIZE = 200
# OFFSET costs a scan of the rows it skips, even on the partial index: deeper than this,
# narrow the list with filters.
MAX_OFFSET = 10_000


class Out(BaseModel):
    """What the API answers, built from dicts or model instances (their attributes).

    Plain pydantic rather than ninja's Schema: Schema wraps every object it validates, each
    nested one included, in a getter that looks for resolver methods we do not use; for the
    ~130 nested objects of a 24h metrics answer that took longer than its SQL
    (docs/benchmark.md). Query and body schemas stay ninja Schemas.
    """

    # Every field is in every answer (defaults included): the schema says so, so that a generated
    # client types `held` as a boolean, not as one that may be missing.
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_mode_override="serialization",
        json_schema_serialization_defaults_required=True,
    )


ActiveStatus = Literal[tuple(status.value for status in ACTIVE_STATUSES)]

ErrorClassValue = Literal[tuple(ErrorType.values)]


def _design_error_class(value: Any) -> str | None:
    # The design's four classes, as the manager records them; a failure recorded without one (or
    # with another, by an older version) has none, rather than failing the whole answer.
    return value if value in ErrorType.values else None


# A failure's class, for a generated client to switch on: an enum, null when none was recorded.
ErrorClass = Annotated[ErrorClassValue | None, BeforeValidator(_design_error_class)]


# A job's whole id, or its first 8 hex digits or more (the short id shown everywhere), with the
# dashes of a whole id where it has them or none. Fewer than 8 would often name several jobs.
JOB_ID_PATTERN = "^[0-9a-fA-F]{8}(?:-?[0-9a-fA-F]{4}){0,3}(?:-?[0-9a-fA-F]{0,12})?$"
_JOB_ID_PREFIX = re.compile(JOB_ID_PATTERN)
_WHOLE_ID = TypeAdapter(UUID)


def _job_id_or_prefix(value: Any) -> UUID | str:
    try:
        return _WHOLE_ID.validate_python(value)  # a whole id in every form taken before (no dashes, braces, urn:)
    except SchemaValidationError:
        pass
    if isinstance(value, str) and _JOB_ID_PREFIX.fullmatch(value):
        return value
    raise PydanticCustomError(
        "job_id", "expected a job id, or its first 8 or more hex digits (e.g. 3f2a1b4c or 3f2a1b4c-9d0e)"
    )


JobIdOrPrefix = Annotated[
    UUID | str,
    PlainValidator(_job_id_or_prefix),
    # The pattern documents what _job_id_or_prefix checks (whose message is friendlier than a regex's).
    WithJsonSchema(
        {
            "type": "string",
            "pattern": JOB_ID_PATTERN,
            "description": "The job's id, or its first 8 hex digits or more (its short id).",
            "examples": ["3f2a1b4c-9d0e-4f6a-8b1c-2d3e4f5a6b7c", "3f2a1b4c"],
        }
    ),
]


ERROR_FINGERPRINT_PATTERN = "^[0-9a-fA-F]{16}$"
_ERROR_FINGERPRINT = re.compile(ERROR_FINGERPRINT_PATTERN)


def _error_fingerprint(value: Any) -> str:
    if isinstance(value, str) and _ERROR_FINGERPRINT.fullmatch(value):
        return value.lower()
    raise PydanticCustomError("error_fingerprint", ERROR_FINGERPRINT_MESSAGE)


ErrorFingerprint = Annotated[
    str,
    PlainValidator(_error_fingerprint),
    WithJsonSchema({"type": "string", "pattern": ERROR_FINGERPRINT_PATTERN, "examples": ["3f2a9c1e0b7d4a65"]}),
]


# Digits, with a minus left to the bounds (whose message says more) and "5.0", an integer as JSON
# Schema has it (the schema's clients send it so).
_DIGITS = re.compile(r"-?[0-9]+(?:\.0+)?")


def _digits_only(value: Any) -> Any:
    # A query string's number as written: pydantic alone also reads "5_0" as 50, and " 5" and
    # "+5" as 5, so a typo would page somewhere nobody asked for.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError("query_integer", "must be a whole number, in digits")
    return value


DIGITS_ONLY = BeforeValidator(_digits_only)
QueryInt = Annotated[int, DIGITS_ONLY]


class JobListQuery(Schema):
    job_type: JobTypeName | None = Field(default=None, description="Only jobs of this type.", examples=["ai_matching"])
    status: ActiveStatus | None = Field(default=None, description="Only jobs in this active status.")
    attention: bool = Field(
        default=False,
        description="Only running jobs that need attention, as the dashboard flags them: no progress report for a "
        "quarter of their timeout (a minute at least), 80 % of their timeout used, or three heartbeats missed.",
    )
    limit: QueryInt = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="Page size.")
    offset: QueryInt = Field(
        default=0, ge=0, le=MAX_OFFSET, description="Jobs to skip: the previous page's `next_offset`."
    )


FinishedStatus = Literal[tuple(status.value for status in FINISHED_STATUSES)]
# Each page of finished jobs reads the pages before it from the index, as the dashboard's.
MAX_FINISHED_OFFSET = 1_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MOMENT_MESSAGE = "expected a moment with its timezone, e.g. 2026-11-29T03:00:00Z (in a URL, a + is written %2B)"


def _moment(value: Any) -> datetime:
    # ISO 8601 with its offset, as the schema's date-time says: pydantic's datetime would also
    # take a number of seconds ("0.0", "1700000000"), which a CI run's schemathesis sent as a
    # value the schema refuses, and saw answered 200.
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except (TypeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None:
        raise PydanticCustomError("moment", MOMENT_MESSAGE)
    # Nothing finished before 1970 (and a window before year 1 would not compute): the same list.
    # In UTC: Postgres refuses offsets past ±15:59 that Python takes ("-23:12" was a 500).
    return max(moment, _EPOCH).astimezone(UTC)


Moment = Annotated[
    datetime,
    PlainValidator(_moment),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-29T03:00:00Z"]}),
]


class FinishedJobListQuery(Schema):
    window: Literal[tuple(FINISHED_WINDOWS)] = Field(
        default="1h", description="Finished within this long before `until` (before now without it)."
    )
    until: Moment | None = Field(
        default=None,
        description="Pin the list: only jobs finished at or before this moment (a later one counts as now, an "
        "earlier one than 1970 as 1970). Send "
        "the first page's `until` with each next page: jobs that finish meanwhile then do not shift the pages.",
    )
    job_type: JobTypeName | None = Field(default=None, description="Only jobs of this type.", examples=["ai_matching"])
    status: FinishedStatus | None = Field(default=None, description="Only jobs that ended this way.")
    error: ErrorFingerprint | None = Field(
        default=None,
        description="Only jobs whose last error has this fingerprint (16 hex digits): the same exception type and "
        "message, numbers, ids and quoted values aside, as the metrics' `top_errors` group them.",
    )
    limit: QueryInt = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="Page size.")
    offset: QueryInt = Field(
        default=0, ge=0, le=MAX_FINISHED_OFFSET, description="Jobs to skip: the previous page's `next_offset`."
    )


class JobSummaryOut(Out):
    id: UUID
    job_type: str = Field(examples=["ai_matching"])
    status: JobStatus
    progress: int = Field(ge=0, le=100, description="Percent done in the current attempt.")
    message: str = Field(description="The last progress message or error summary.")
    attempts: int = Field(description="Attempts started so far.")
    max_attempts: int
    error_class: ErrorClass = Field(
        description="Class of the last failure: transient, configuration, data or system; null without one.",
        examples=["transient"],
    )
    worker: str = Field(description="host:pid of the worker running or last running it.", examples=["node-1:4242"])
    created_at: datetime
    updated_at: datetime = Field(description="Last change of any kind (lists are newest activity first).")
    started_at: datetime | None = Field(description="Start of the first attempt.")
    attempt_started_at: datetime | None = Field(description="Start of the current (or last) attempt.")
    finished_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a retrying job's next attempt is due.")
    cancel_requested_at: datetime | None
    heartbeat_at: datetime | None = Field(
        description="Last heartbeat of the worker running it (every JOBS_HEARTBEAT_INTERVAL seconds while it runs)."
    )
    held: bool = Field(
        default=False,
        description="Queued while its job type is paused: it starts once the type is resumed "
        "(`POST /api/jobs/resume`).",
    )


TRUNCATED_DESCRIPTION = (
    "True when more rows follow but the next page would start past the deepest `offset` this list accepts: "
    "`next_offset` is then null; narrow the filters to reach them."
)


def page_out(items: list, more: bool, *, limit: int, offset: int, max_offset: int) -> dict:
    """A page of a list, with the offset of the next one: null on the last page, and where the next
    page would start past `max_offset` (a list never hands out an offset it then refuses)."""
    following = offset + limit
    next_offset = following if more and following <= max_offset else None
    truncated = more and next_offset is None
    return {"items": items, "limit": limit, "offset": offset, "next_offset": next_offset, "truncated": truncated}


class JobPageOut(Out):
    items: list[JobSummaryOut]
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="The `offset` of the next page; null on the last page. There is no total: counting every "
        "active job on each poll would cost more than the page itself."
    )
    truncated: bool = Field(description=TRUNCATED_DESCRIPTION)


class FinishedJobPageOut(JobPageOut):
    until: datetime = Field(
        description="The moment this list was read up to (the `until` sent, or now): send it as `until` with "
        "`next_offset` so that jobs finishing meanwhile do not shift the next pages."
    )


class EventOut(Out):
    timestamp: datetime
    event_type: EventType = Field(
        description="queued, started, progress, cancel_requested, error, retry, completed or cancelled."
    )
    status: str = Field(description="The job's status when it happened.")
    progress: int | None
    message: str | None
    details: dict[str, Any] | None = Field(description="Event-specific data, e.g. a retry's planned and actual wait.")
    error_details: dict[str, Any] | None = Field(
        description="For errors: type, message, error_class, retryable, traceback, fingerprint."
    )
    execution_time_ms: int | None
    memory_usage_mb: int | None


class EventPageQuery(Schema):
    limit: QueryInt = Field(default=MAX_TIMELINE_EVENTS, ge=1, le=MAX_TIMELINE_EVENTS, description="Page size.")
    offset: QueryInt = Field(
        default=0, ge=0, le=MAX_EVENT_OFFSET, description="Events to skip: the previous page's `next_offset`."
    )


class EventPageOut(Out):
    items: list[EventOut] = Field(description="Oldest first.")
    total: int = Field(description="All events of the job.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="The `offset` of the next page; null on the last page.")
    truncated: bool = Field(
        description=f"True when more events follow past the deepest `offset` this list accepts ({MAX_EVENT_OFFSET:,})."
    )


class AttemptOut(Out):
    attempt_number: int
    status: RetryStatus
    started_at: datetime
    completed_at: datetime | None
    error_message: str | None
    planned_delay_s: int | None = Field(
        description="The backoff delay planned before this attempt (none for the first)."
    )
    waited_s: float | None = Field(
        description="Seconds actually between the end of the previous attempt and the start of this one."
    )


class JobErrorOut(Out):
    type: str = Field(examples=["httpx.ConnectTimeout"])
    message: str
    error_class: ErrorClass = Field(
        description="transient, configuration, data or system; null if the failure was recorded without one.",
        examples=["transient"],
    )
    retryable: bool | None = Field(default=None, description="Whether this failure was retried automatically.")
    hint: str = Field(default="", examples=["Retried automatically with backoff."])
    fingerprint: str | None = Field(default=None, description="Groups occurrences of the same error.")
    traceback: str | None = Field(default=None, description="Python traceback of the failure (last 50,000 characters).")


SeverityName = Literal[tuple(Severity.values)]


class AlertOut(Out):
    """An alert as alerts.selectors read it (with_alert_state): its row and its state."""

    id: UUID
    alert_type: str = Field(
        description="job_failure, performance_degradation, system_health or resource_utilization (or a type "
        "raised by other code).",
        examples=["job_failure"],
    )
    severity: SeverityName
    title: str
    message: str
    job_id: UUID | None = Field(description="The job that raised it (its first occurrence).")
    job_type: str = Field(description="The job type it is about; empty for alerts not about jobs.")
    triggered_at: datetime
    last_seen_at: datetime = Field(description="The latest occurrence.")
    occurrences: int = Field(description="Occurrences counted into it: repeats of the same alert while open.")
    resolved_at: datetime | None
    resolved_by: str = Field(description="Who resolved it; empty while open, or when it cleared by itself.")
    resolution_reason: str = Field(examples=["resolved through the API", "Auto-resolved: database healthy again."])
    notification_sent: bool | None = Field(description="Whether a notification about it was delivered.")
    escalated: bool | None = Field(description="Whether it went unresolved long enough to be escalated.")
    acknowledged_at: datetime | None = Field(description="When someone last acknowledged it (null: never).")
    acknowledged_by: str = Field(description="Who acknowledged it; empty if nobody did.")
    acknowledged_until: datetime | None = Field(
        description="Until then (if still ahead) it is neither escalated nor notified again as it keeps occurring."
    )
    last_delivery_error: str = Field(
        description="The last error of a notification not delivered (yet, or for good); empty if none.",
        examples=["attempt 2: HTTP 503"],
    )


JOB_DETAIL_FIELDS = (
    *(name for name in JobSummaryOut.model_fields if name != "held"),  # held: from the pause, below
    "parameters",
    "result",
    "submitted_by",
    "retry_delay",
)


class JobTypePauseOut(Out):
    job_type: str
    paused_at: datetime
    paused_by: str
    reason: str


class JobDetailOut(JobSummaryOut):
    parameters: dict[str, Any]
    result: Any = Field(default=None, description="What the job returned (when completed).")
    submitted_by: str
    retry_delay: float | None = Field(description="Seconds planned before the next attempt (retrying jobs).")
    duration_ms: int | None = Field(
        ge=0,
        description="From the start of the first attempt to the end (finished jobs); never negative, as on the "
        "dashboard: nodes' clocks may differ by up to a second (jobs/clock.py).",
    )
    error: JobErrorOut | None = Field(description="The last failure, classified, with a hint and its traceback.")
    timeline: list[EventOut] = Field(description="Events oldest first: the latest 500 at most.")
    timeline_total: int = Field(description="All events of the job, including those not in `timeline`.")
    timeline_truncated: bool
    timeline_pruned: bool = Field(
        description="No event is left: retention deleted them, RETENTION_JOB_EXECUTION_LOGS_DAYS days after the job "
        "finished (an empty timeline otherwise means none was recorded)."
    )
    timeline_earlier_pruned: bool = Field(
        description="The timeline starts at a retry: retention deleted the events of the attempts before it (the job "
        "had finished more than RETENTION_JOB_EXECUTION_LOGS_DAYS days before it was retried); retry_history has them."
    )
    retry_history: list[AttemptOut] = Field(description="One entry per attempt, first to last.")
    alerts: list[AlertOut] = Field(
        description="The alerts it raised or was counted into, newest first (100 at most); empty without "
        "alerts.view_alerthistory."
    )
    job_type_paused: JobTypePauseOut | None = Field(
        description="Its job type's pause (who, when, why), if paused: a queued attempt waits for the resume."
    )

    @classmethod
    def build(cls, detail: JobDetail, *, error_event, alerts, pause) -> "JobDetailOut":
        job = detail.job
        return cls.model_validate(
            {
                **{name: getattr(job, name) for name in JOB_DETAIL_FIELDS},
                "duration_ms": _duration_ms(job),
                "error": _error(job.last_error, error_event),
                "timeline": detail.events,
                "timeline_total": detail.events_total,
                "timeline_truncated": detail.events_truncated,
                "timeline_pruned": detail.events_pruned,
                "timeline_earlier_pruned": detail.earlier_events_pruned,
                "retry_history": _attempts(detail.attempts),
                "alerts": alerts,
                "job_type_paused": pause,
                "held": job.status == JobStatus.QUEUED and pause is not None,
            }
        )


def _duration_ms(job) -> int | None:
    if job.finished_at is None or job.started_at is None:
        return None
    return max(0, _ms(job.finished_at - job.started_at))


def _ms(delta) -> int:
    return int(delta.total_seconds() * 1000)


def _error(last_error: dict | None, event) -> dict | None:
    if not last_error:
        return None
    traceback = (event.error_details or {}).get("traceback") if event else None
    return {
        "type": str(last_error.get("type", "")),
        "message": str(last_error.get("message", "")),
        "error_class": last_error.get("error_class"),
        "retryable": last_error.get("retryable"),
        "hint": str(last_error.get("hint") or ""),
        "fingerprint": last_error.get("fingerprint"),
        "traceback": traceback,
    }


def _attempts(attempts) -> list[dict]:
    out, previous = [], None
    for attempt in attempts:
        waited = None
        if previous is not None and previous.completed_at and attempt.started_at:
            waited = round((attempt.started_at - previous.completed_at).total_seconds(), 3)
        out.append(
            {
                "attempt_number": attempt.attempt_number,
                "status": attempt.status,
                "started_at": attempt.started_at,
                "completed_at": attempt.completed_at,
                "error_message": attempt.error_message,
                "planned_delay_s": attempt.retry_delay_seconds,
                "waited_s": waited,
            }
        )
        previous = attempt
    return out


# --- health ---------------------------------------------------------------------------------


# The checks' statuses, and "unknown": no check yet, or a reading no longer current.
HealthStatusName = Literal[(*HealthStatus.values, "unknown")]


class HealthComponentOut(Out):
    metric_type: MetricType = Field(description="database, api, resource or job_queue.", examples=["database"])
    metric_name: str = Field(examples=["database.latency_ms"])
    host: str | None = Field(
        description="The node a resource reading is of (`details.host`: cpu, memory, disk and clock of each "
        "worker host, each host its own component); null for the components of the whole system.",
        examples=["node-1", None],
    )
    metric_value: float = Field(description="What was measured, in the unit its name says.", examples=[1.25])
    status: HealthStatusName = Field(
        description="unknown for the stored cluster.workers reading while no worker runs (`stale`)."
    )
    details: dict[str, Any] | None = Field(
        description="Always a one-line human `message`; then what the check saw (e.g. `host`, `url`, `clusters`; "
        "an api component's `failed_calls`: job attempts that failed calling the service in the last "
        "`window_minutes`, out of `attempts` of their `job_types` (`failed_calls_pct`), and the newest one's "
        "`latest_error`; cluster.workers' `expected_workers` (0: not judged) and `gone_hosts`: the nodes whose "
        "samples stopped and whose cluster is gone, each `host` and `last_seen_at`).",
        examples=[
            {"message": "SELECT 1 answered in 1.2 ms", "vendor": "postgresql"},
            {
                "message": "HTTP 200 in 4 ms; 17 of 47 ai_matching attempts failed calling it in the last 5 min: "
                "36 % (latest: HTTP 503)",
                "url": "http://ai.internal:8080",
                "timeout_s": 5.0,
                "status_code": 200,
                "failed_calls": 17,
                "attempts": 47,
                "failed_calls_pct": 36.2,
                "job_types": ["ai_matching"],
                "window_minutes": 5,
                "latest_error": "HTTP 503",
            },
        ],
    )
    timestamp: datetime = Field(description="When this component was last checked.")
    stale: bool = Field(
        default=False,
        description="The stored cluster.workers reading while no worker runs: not current (status unknown).",
    )


class NoWorkerOut(Out):
    last_seen_at: datetime | None = Field(description="When a worker was last seen alive; null: never.")
    queued: int = Field(description="Jobs queued, waiting for a worker.")
    oldest_queued_at: datetime | None


class WorkerHostOut(Out):
    """A host that ran jobs lately (monitoring.selectors.worker_hosts)."""

    host: str = Field(examples=["node-1"])
    processes: list[str] = Field(description="The pids of its workers seen running jobs in the window.")
    running: int = Field(description="Jobs running there now.")
    succeeded: int = Field(description="Latest attempts that ended there in the window and succeeded.")
    failed: int = Field(
        description="Latest attempts that ended there in the window and failed (waiting for a retry too)."
    )
    failure_share: float | None = Field(
        description="failed / (succeeded + failed), to 4 decimals; null if none ended.", examples=[0.1625]
    )
    others_failure_share: float | None = Field(
        description="The same over the other hosts together (to 4 decimals; null if none ended there)."
    )
    suspect: bool = Field(
        description="It failed at least 5 jobs, half of its jobs or more, and twice the other hosts' share or more: "
        "its environment may be broken."
    )
    last_seen: datetime | None = Field(description="Its latest heartbeat or job change.")


class HealthOut(Out):
    status: HealthStatusName = Field(
        description="The worst component's status; unknown before the first check; critical whatever they say "
        "once the checks stopped and no worker is seen (`no_worker`)."
    )
    checked_at: datetime | None = Field(
        description="The latest run of the checks. Old means the checks stopped running: its results stay."
    )
    components: list[HealthComponentOut] = Field(description="Each component's latest result, by type, name and host.")
    stale: bool = Field(description="The checks stopped: none for HEALTH_STALE_AFTER_MINUTES (3 by default).")
    no_worker: NoWorkerOut | None = Field(
        description="Set when the checks stopped and no worker has been seen either (a job's heartbeat counts): "
        "no django-q2 cluster is running; the status is then critical."
    )
    workers: list[WorkerHostOut] = Field(
        description="The hosts that ran jobs in the last hour, in name order: their workers, jobs running now, and "
        "how the latest attempts that ended there went."
    )


# --- performance metrics --------------------------------------------------------------------


def _known_timeframe(value: str) -> str:
    if value not in TIMEFRAMES:
        raise UnknownTimeframe(value)
    return value


Timeframe = Annotated[
    str,
    # The enum documents what _known_timeframe checks (whose message lists the accepted values).
    Field(json_schema_extra={"enum": list(TIMEFRAMES)}),
    AfterValidator(_known_timeframe),
]


class _RegisteredJobTypesEnum:
    """Lists the registered job types as the schema's enum, read as the schema is built (job
    types register at start-up)."""

    def __get_pydantic_json_schema__(self, core_schema, handler) -> dict:
        schema = handler(core_schema)
        schema["enum"] = registered_job_types()
        return schema


# A job type an action or a report must know: the schema lists the registered ones (a client's
# enum); the API also takes one no longer registered whose jobs are still here
# (jobs.manager.require_known_job_type).
KnownJobTypeName = Annotated[JobTypeName, _RegisteredJobTypesEnum()]


class MetricsQuery(Schema):
    timeframe: Timeframe = Field(default="1h", description="The window, ending now.")
    job_type: KnownJobTypeName | None = Field(
        default=None,
        description="Only this job type: a registered one, or one no longer registered whose jobs are still here "
        "(any other name is a 422 listing the known ones).",
        examples=["ai_matching"],
    )
    error: ErrorFingerprint | None = Field(
        default=None,
        description="Only the attempts that failed with this error (a fingerprint, 16 hex digits, as `top_errors` "
        "gives it): its failures over time, classes and group; succeeded, cancelled, started and retried are 0.",
    )


class PerformanceStatsOut(Out):
    started: int = Field(description="Attempts started.")
    retried: int = Field(description="Of those, attempts after a job's first (automatic or manual retries).")
    succeeded: int = Field(description="Attempts completed, i.e. jobs completed.")
    failed: int = Field(description="Jobs failed for good (no retry left).")
    failed_attempts: int = Field(description="Every failed attempt, the retried ones included.")
    retried_failures: int = Field(
        description="Of those, the attempts whose job was to be retried (error event 'retrying'): not the jobs "
        "failed for good, nor an attempt whose retry a cancel stopped."
    )
    cancelled: int = Field(description="Jobs cancelled.")
    success_rate: float | None = Field(
        ge=0,
        le=1,
        description="succeeded / (succeeded + failed), to 4 decimals; null when neither happened, and with "
        "`error` (one error's failures: no figure of the jobs).",
    )
    throughput_per_minute: float = Field(description="Jobs finished (succeeded, failed or cancelled) per minute.")
    mean_ms: float | None = Field(description="Execution time of succeeded attempts; null without any.")
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class JobTypeStatsOut(PerformanceStatsOut):
    job_type: str = Field(examples=["ai_matching"])


class ErrorClassCountOut(Out):
    error_class: Literal[(*ErrorType.values, "unknown")] = Field(
        description="transient, configuration, data or system (all four always listed); unknown: failures "
        "recorded without one of them (listed only if any)."
    )
    count: int


class ExceptionTypeCountOut(Out):
    exception_type: str = Field(examples=["httpx.ConnectTimeout"])
    count: int


class TopErrorOut(Out):
    fingerprint: str = Field(description="Groups occurrences of the same error.")
    count: int
    first_seen: datetime = Field(description="First occurrence inside the window.")
    last_seen: datetime
    job_types: list[str]
    example_job_id: UUID | None = Field(description="The job of the latest occurrence.")
    exception_type: str | None = Field(examples=["httpx.ConnectTimeout"])
    message: str = Field(description="The latest occurrence's message (500 characters at most).")
    error_class: ErrorClass = Field(description="The latest occurrence's class.", examples=["transient"])


class SeriesPointOut(Out):
    bucket_start: datetime
    started: int
    succeeded: int
    failed: int
    failed_attempts: int
    retried_failures: int
    cancelled: int
    p50_ms: float | None
    p95_ms: float | None


class PerformanceMetricsOut(Out):
    timeframe: str = Field(examples=["1h"])
    job_type: str | None = Field(description="The job type asked for; null for all.")
    error: str | None = Field(description="The error fingerprint asked for; null for all.")
    since: datetime = Field(description="Start of the window (included).")
    until: datetime = Field(description="End of the window (excluded): now.")
    bucket_seconds: int = Field(description="Width of each point of `series`.", examples=[60])
    overall: PerformanceStatsOut
    by_job_type: list[JobTypeStatsOut] = Field(description="Each job type with activity in the window, by name.")
    errors_by_class: list[ErrorClassCountOut] = Field(description="Failed attempts per error class.")
    errors_by_type: list[ExceptionTypeCountOut] = Field(description="Failed attempts per exception type: top 20.")
    top_errors: list[TopErrorOut] = Field(description="The 10 most frequent errors, grouped by fingerprint.")
    error_groups: int = Field(
        description="How many error groups (fingerprints) the window has in all: `top_errors` lists the 10 most "
        "frequent.",
        examples=[10],
    )
    series: list[SeriesPointOut] = Field(
        description="Every bucket of the window, oldest first, for charts. Buckets are aligned on the epoch: "
        "the first and last may be partial."
    )


# --- alerts -----------------------------------------------------------------------------------

AlertTypeName = Annotated[
    str,
    # As long as alert_history.alert_type can hold: a longer one cannot match anything.
    Field(min_length=1, max_length=50, json_schema_extra={"pattern": "^[^\\x00-\\x1f]*$"}),
    AfterValidator(printable),
]


class AlertListQuery(Schema):
    include_resolved: bool = Field(default=False, description="Resolved alerts too (all of history).")
    unacknowledged: bool = Field(
        default=False,
        description="Only the unresolved alerts no acknowledgement holds now: nobody said they are on them "
        "(`include_resolved` adds nothing to it).",
    )
    severity: SeverityName | None = Field(default=None, description="Only alerts of this severity.")
    alert_type: AlertTypeName | None = Field(
        default=None,
        description="Only alerts of this type: job_failure, performance_degradation, system_health, "
        "resource_utilization, or a type raised by other code.",
        examples=["job_failure"],
    )
    until: Moment | None = Field(
        default=None,
        description="Pin the list: only alerts raised at or before this moment (a later one counts as now). Send "
        "the first page's `until` with each next page: alerts raised meanwhile then do not shift the pages.",
    )
    limit: QueryInt = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="Page size.")
    offset: QueryInt = Field(
        default=0, ge=0, le=MAX_OFFSET, description="Alerts to skip: the previous page's `next_offset`."
    )


class AlertPageOut(Out):
    items: list[AlertOut]
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="The `offset` of the next page; null on the last page. There is no total: counting the whole "
        "history on each poll would cost more than the page itself."
    )
    truncated: bool = Field(description=TRUNCATED_DESCRIPTION)
    until: datetime = Field(
        description="The moment this list was read up to (the `until` sent, or now): send it as `until` with "
        "`next_offset` so that alerts raised meanwhile do not shift the next pages."
    )


class AlertResolveIn(BaseModel):
    """The optional JSON body of a resolve."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(
        "",
        max_length=MAX_REASON_CHARS,
        description="Why it is resolved, kept with the alert. Default: who resolved it through the API.",
        examples=["AI service back after the 03:10 deploy"],
    )


class AlertAcknowledgeIn(BaseModel):
    """The acknowledge takes no fields: a body, if any, is `{}` (anything else is a 422 naming it,
    rather than a `minutes` silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class AlertAcknowledgeOut(Out):
    detail: str = Field(examples=["alert 0b6f… acknowledged until 2026-11-29T04:12:00Z"])
    alert: AlertOut = Field(description="The alert as it is now: who acknowledged it, and until when.")


class AlertResolveOut(Out):
    detail: str = Field(examples=["alert 0b6f… resolved", "alert 0b6f… was already resolved at … by carol"])
    already_resolved: bool = Field(
        description="True when it was resolved before this request, which then changed nothing."
    )
    alert: AlertOut = Field(description="The alert as it is now: who resolved it, and when.")
