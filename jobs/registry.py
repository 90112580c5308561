"""Job types: which function runs a job, how its parameters are checked, its retry policy.

    @job_executor("reports.build", params=BuildParams, timeout=300)
    def build_report(params: dict, ctx: JobContext) -> dict:
        ctx.progress(50, "halfway")
        return {"rows": 10}
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.conf import settings
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from jobs.retry import RetryManager


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
        if self.params is None:
            return parameters
        try:
            return self.params.model_validate(parameters).model_dump(mode="json")
        except PydanticValidationError as e:
            errors = [
                {"field": ".".join(["parameters", *map(str, err["loc"])]), "message": err["msg"]} for err in e.errors()
            ]
            raise InvalidJobParameters(self.job_type, errors) from None

    def run(self, parameters: dict, ctx) -> object:
        if inspect.iscoroutinefunction(self.func):
            return async_to_sync(self.func)(parameters, ctx)
        return self.func(parameters, ctx)


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
