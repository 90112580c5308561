"""Job types: which function runs a job, how its parameters are checked, its retry policy.

    @job_executor("reports.build", params=BuildParams, timeout=300)
    def build_report(params: dict, ctx: JobContext) -> dict:
        ctx.progress(50, "halfway")
        return {"rows": 10}
"""

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from asgiref.sync import async_to_sync
from django.conf import settings
from pydantic import AfterValidator, BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from jobs.payloads import printable
from jobs.retry import RetryManager


def unpadded(name: str) -> str:
    """`name` unchanged, or ValueError if it begins or ends with a space: " ai_matching" is a
    typo for ai_matching, and pausing it would pause nothing. The ASCII space only, as the
    schema's pattern says it (other whitespace is a control character, or rare enough to keep)."""
    if name != name.strip(" "):
        raise ValueError("must not begin or end with a space")
    return name


# A job type's name: any printable text without surrounding spaces (a type registered in another
# process, or renamed or removed since, keeps its name). The one rule of every job type the API
# and the dashboard take.
JobTypeName = Annotated[
    str,
    # The pattern documents what the validators check (their messages are friendlier than a regex's).
    Field(
        min_length=1,
        max_length=100,
        json_schema_extra={"pattern": "^[^\\x00-\\x1f ]([^\\x00-\\x1f]*[^\\x00-\\x1f ])?$"},
    ),
    AfterValidator(printable),
    AfterValidator(unpadded),
]


class UnknownJobType(LookupError):
    def __init__(self, job_type: str):
        self.job_type = job_type
        known = ", ".join(registered_job_types()) or "none"
        super().__init__(f"unknown job type {job_type!r}; known job types: {known}")


class InvalidJobParameters(ValueError):
    """The parameters do not fit the job type; `errors` names each bad field."""

    def __init__(self, job_type: str, errors: list[dict]):
        self.job_type = job_type
        self.errors = errors
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"invalid parameters for {job_type}: {problems}")


@dataclass(frozen=True)
class JobExecutor:
    job_type: str
    func: Callable
    params: type[BaseModel] | None = None
    description: str = ""
    # None means "from settings" (JOBS["RETRY"], JOBS["TYPES"][job_type]).
    max_attempts: int | None = None
    base_delay: float | None = None
    max_delay: float | None = None
    timeout: int | None = None

    @property
    def retry_manager(self) -> RetryManager:
        return RetryManager.from_settings(
            self.job_type, max_attempts=self.max_attempts, base_delay=self.base_delay, max_delay=self.max_delay
        )

    @property
    def timeout_seconds(self) -> int:
        configured = settings.JOBS["TYPES"].get(self.job_type, {}).get("timeout")
        return int(configured or self.timeout or settings.JOBS["DEFAULT_TIMEOUT"])

    def validate_parameters(self, parameters: dict | None) -> dict:
        parameters = {} if parameters is None else parameters
        if not isinstance(parameters, dict):
            raise InvalidJobParameters(self.job_type, [{"field": "parameters", "message": "must be a JSON object"}])
        # Before the job type's checks: of NaN, "less than or equal to 3600" would be their answer.
        if not_finite := _non_finite_numbers(parameters):
            errors = [{"field": field, "message": "must be a finite number"} for field in not_finite]
            raise InvalidJobParameters(self.job_type, errors)
        if self.params is None:
            return parameters
        try:
            return self.params.model_validate(parameters).model_dump(mode="json")
        except PydanticValidationError as e:
            raise InvalidJobParameters(self.job_type, _field_errors(e.errors(), parameters)) from None

    def run(self, parameters: dict, ctx) -> object:
        if inspect.iscoroutinefunction(self.func):
            return async_to_sync(self.func)(parameters, ctx)
        return self.func(parameters, ctx)


def _non_finite_numbers(parameters: dict) -> list[str]:
    """The dotted paths of NaN and ±Infinity in the parameters (Python's json reads them, and
    1e400 as Infinity; they are no JSON numbers and jsonb refuses them). Walked without
    recursion: nesting is only bounded later."""
    found, pending = [], [("parameters", parameters)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            found.append(path)
        elif isinstance(value, dict):
            pending.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((f"{path}.{index}", item) for index, item in enumerate(value))
    return sorted(found)


# How a union's types are named in pydantic's messages; others keep pydantic's message.
_TYPE_NAMES = {"int": "an integer", "str": "a string", "float": "a number", "bool": "true or false", "none": "null"}


def _field_errors(errors: list[dict], parameters: dict) -> list[dict]:
    """pydantic's errors as {field, message}, one per field. Pydantic puts the type it tried of a
    union (`int | str`) in the location (job_posting_id.int, job_posting_id.str): no field of the
    parameters, so it is left out, and "must be an integer or a string" sums up the types tried."""
    by_field: dict[str, list[tuple[str | None, str]]] = {}
    for error in errors:
        path, union_types = _path_in(parameters, error)
        tried = (union_types[-1] if union_types else None, error["msg"])
        by_field.setdefault(".".join(["parameters", *path]), []).append(tried)
    return [{"field": field, "message": _message(tried)} for field, tried in by_field.items()]


def _path_in(value, error: dict) -> tuple[list[str], list[str]]:
    """(the parts of the error's location that are fields of the parameters, the union types in it)."""
    path, union_types = [], []
    for index, part in enumerate(error["loc"]):
        if isinstance(value, dict) and part in value or isinstance(value, list) and isinstance(part, int):
            value = value[part]
            path.append(str(part))
        elif error["type"] == "missing" and index == len(error["loc"]) - 1:
            path.append(str(part))  # a field the parameters lack
        else:
            union_types.append(str(part))
    return path, union_types


def _message(tried: list[tuple[str | None, str]]) -> str:
    if len(tried) > 1 and all(union_type in _TYPE_NAMES for union_type, _ in tried):
        return "must be " + " or ".join(dict.fromkeys(_TYPE_NAMES[union_type] for union_type, _ in tried))
    return "; ".join(dict.fromkeys(message for _, message in tried))


_registry: dict[str, JobExecutor] = {}


def job_executor(job_type: str, **options) -> Callable:
    """Register the decorated function as the executor of `job_type`."""

    def register(func: Callable) -> Callable:
        if job_type in _registry and _registry[job_type].func is not func:
            raise ValueError(f"job type {job_type!r} is already registered")
        _registry[job_type] = JobExecutor(job_type=job_type, func=func, **options)
        return func

    return register


def get_job_executor(job_type: str) -> JobExecutor:
    try:
        return _registry[job_type]
    except KeyError:
        raise UnknownJobType(job_type) from None


def registered_job_types() -> list[str]:
    return sorted(_registry)


def retry_manager_for(job_type: str) -> RetryManager:
    """The retry policy of a job type, even one no longer registered."""
    executor = _registry.get(job_type)
    return executor.retry_manager if executor else RetryManager.from_settings(job_type)


def timeout_for(job_type: str) -> int:
    """Seconds an attempt of this job type may run, even for a type no longer registered."""
    executor = _registry.get(job_type)
    if executor:
        return executor.timeout_seconds
    return int(settings.JOBS["TYPES"].get(job_type, {}).get("timeout") or settings.JOBS["DEFAULT_TIMEOUT"])


def job_types_by_timeout() -> tuple[dict[int, list[str]], int]:
    """({timeout: [job types]} of every type registered or configured, the default timeout of
    any other): timeout_for() of all job types at once, for queries that compare with it."""
    grouped: dict[int, list[str]] = {}
    for job_type in sorted(set(_registry) | set(settings.JOBS["TYPES"])):
        grouped.setdefault(timeout_for(job_type), []).append(job_type)
    return grouped, int(settings.JOBS["DEFAULT_TIMEOUT"])
