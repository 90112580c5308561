"""The design's four error classes, how a failure is sorted into one, and what follows."""

import errno
import hashlib
import json
import re
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, models
from django.db import DataError as DatabaseDataError
from django_q.exceptions import TimeoutException

from jobs.payloads import MAX_JSON_BYTES, url_origin

try:  # pydantic comes with django-ninja
    from pydantic import ValidationError as PydanticValidationError
except ImportError:  # pragma: no cover
    PydanticValidationError = ()


class ErrorType(models.TextChoices):
    TRANSIENT = "transient", "Transient"  # network timeouts, database briefly unavailable
    CONFIGURATION = "configuration", "Configuration"  # missing API keys, invalid settings
    DATA = "data", "Data"  # malformed input, constraint violations
    SYSTEM = "system", "System"  # out of memory, disk full, a worker lost


# A retry can help with these; configuration and data errors need a human first.
RETRYABLE_ERROR_TYPES = frozenset({ErrorType.TRANSIENT, ErrorType.SYSTEM})


class JobError(Exception):
    """Raise a subclass from an executor to classify a failure explicitly."""

    error_type: ErrorType = ErrorType.SYSTEM


class TransientJobError(JobError):
    error_type = ErrorType.TRANSIENT


class ConfigurationJobError(JobError):
    error_type = ErrorType.CONFIGURATION


class DataJobError(JobError):
    error_type = ErrorType.DATA


class SystemJobError(JobError):
    error_type = ErrorType.SYSTEM


class WorkerLostError(SystemJobError):
    """The worker running an attempt stopped sending heartbeats (killed, machine lost)."""


class JobTimeoutError(TransientJobError):
    """An attempt ran past its job type's timeout."""


class JobCancelled(Exception):
    """Raised inside an executor when an operator cancelled the job. Not a failure."""


TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CONFIGURATION_HTTP_STATUSES = frozenset({401, 403, 407})
SYSTEM_ERRNOS = frozenset({errno.ENOSPC, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EDQUOT, errno.EROFS})
TRANSIENT_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH}
)


def classify_error(error: BaseException, context: dict | None = None) -> ErrorType:
    """Sort a failure into one of the four classes, by its type first and then context."""
    if isinstance(error, JobError):
        return error.error_type
    if isinstance(error, TimeoutException):  # django-q2's task timeout
        return ErrorType.TRANSIENT
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        if status in TRANSIENT_HTTP_STATUSES or status >= 500:
            return ErrorType.TRANSIENT
        if status in CONFIGURATION_HTTP_STATUSES:
            return ErrorType.CONFIGURATION
        return ErrorType.DATA
    if isinstance(error, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)):
        return ErrorType.TRANSIENT
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ErrorType.CONFIGURATION
    if isinstance(error, (OperationalError, InterfaceError)):
        return ErrorType.TRANSIENT
    if isinstance(error, (IntegrityError, DatabaseDataError)):
        return ErrorType.DATA
    if isinstance(error, ImproperlyConfigured):
        return ErrorType.CONFIGURATION
    if isinstance(error, MemoryError | RecursionError):
        return ErrorType.SYSTEM
    if isinstance(error, OSError):
        if error.errno in SYSTEM_ERRNOS:
            return ErrorType.SYSTEM
        if isinstance(error, (ConnectionError, TimeoutError)) or error.errno in TRANSIENT_ERRNOS:
            return ErrorType.TRANSIENT
        return ErrorType.SYSTEM
    if isinstance(error, ValidationError | PydanticValidationError | json.JSONDecodeError | UnicodeError):
        return ErrorType.DATA
    if isinstance(error, DatabaseError):
        return ErrorType.SYSTEM
    if isinstance(error, (ValueError, KeyError, IndexError)):
        return ErrorType.DATA
    phase = (context or {}).get("phase")
    if phase == "validate_parameters":
        return ErrorType.DATA
    if phase == "configure":
        return ErrorType.CONFIGURATION
    return ErrorType.SYSTEM


# Ids, numbers and quoted values vary between occurrences of the same error.
_VARIABLE_PARTS = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|0x[0-9a-f]+|\d+(\.\d+)?|'[^']*'|\"[^\"]*\"", re.I)
MAX_MESSAGE_CHARS = 10_000
MAX_TRACEBACK_CHARS = 50_000
MAX_TRACEBACK_LINE_CHARS = 2_000


def error_fingerprint(error_type_name: str, message: str) -> str:
    """Groups occurrences of "the same" error for the error analysis."""
    normalized = _VARIABLE_PARTS.sub("?", message[:500])
    return hashlib.sha1(f"{error_type_name}:{normalized}".encode()).hexdigest()[:16]


def _httpx_request(error: BaseException) -> httpx.Request | None:
    """The request an httpx error was about (an error status or a transport error); None if none."""
    if not isinstance(error, httpx.RequestError | httpx.HTTPStatusError):
        return None
    try:
        return error.request  # a RuntimeError when the error was raised without one
    except RuntimeError:
        return None


def _request_of(error: BaseException) -> str:
    """The request an httpx transport error was about, as "POST http://host:port"; "" if none."""
    request = _httpx_request(error) if isinstance(error, httpx.RequestError) else None
    if request is None:
        return ""
    return f"{request.method} {url_origin(str(request.url))}"


def _service_called(error: BaseException) -> dict:
    """{"service_origin", "http_status"} of a failed call to an HTTP service, as far as known: the
    health check counts a service's failed job calls by its origin (never the path: it may hold a
    secret). Empty for any other error."""
    request = _httpx_request(error)
    if request is None:
        return {}
    called = {"service_origin": url_origin(str(request.url))}
    if isinstance(error, httpx.HTTPStatusError):
        called["http_status"] = error.response.status_code
    return called


def recorded_type(error_class: type[BaseException]) -> str:
    """How an error's type is recorded (error_details["type"]): "httpx.ConnectTimeout", "ValueError"."""
    return f"{error_class.__module__}.{error_class.__qualname__}".removeprefix("builtins.")


def _message_of(error: BaseException) -> str:
    """str(error), or a placeholder when the exception's own __str__ fails (a library's bug): the
    failure must still be recorded, or its attempt stays "running" until the sweep takes it back
    as a lost worker and runs it again, the job's own error never seen."""
    try:
        return str(error)
    except Exception:
        return f"<unprintable {type(error).__name__}>"


def error_details(error: BaseException, error_type: ErrorType, *, retryable: bool) -> dict:
    """What an operator needs about a failure, bounded in size."""
    type_name = recorded_type(type(error))
    message = _message_of(error) or type(error).__name__
    # httpx's connection errors do not say where to ("[Errno 111] Connection refused"): a drill
    # found the error analysis unable to name the dependency that was down. HTTPStatusError
    # names its url already.
    request = _request_of(error)
    if request and request not in message:
        message = f"{message} ({request})"
    # A line of a traceback is a frame or an exception's message: a message of 200 kB (a drill's)
    # left no frame within the traceback's last MAX_TRACEBACK_CHARS. The message is kept above.
    tb = "\n".join(
        line if len(line) <= MAX_TRACEBACK_LINE_CHARS else line[: MAX_TRACEBACK_LINE_CHARS - 1] + "…"
        for line in "".join(traceback.format_exception(error)).split("\n")
    )
    details = {
        "type": type_name,
        "message": message[:MAX_MESSAGE_CHARS],
        "error_class": str(error_type),
        "retryable": retryable,
        "traceback": tb[-MAX_TRACEBACK_CHARS:],
        "fingerprint": error_fingerprint(type_name, message),
        **_service_called(error),
    }
    return _fitted(details, MAX_JSON_BYTES)


def _fitted(details: dict, max_bytes: int) -> dict:
    """The record cut to what an event may hold (max_bytes of ASCII-escaped JSON, as
    jobs.payloads counts them): the message to its first quarter of that, then the
    traceback's start (its end is where the error was raised), then the message further.
    A drill's 200 kB message of CJK text and emoji (6 or 12 bytes a character escaped) made
    the record too big: it was replaced whole by a summary, the traceback, class and
    fingerprint with it, and the errors page filed the failure as unknown."""
    for field, keep_end, floor in (("message", False, max_bytes // 4), ("traceback", True, 0), ("message", False, 0)):
        over = len(json.dumps(details)) - max_bytes
        if over <= 0:
            break
        text = details[field]
        details[field] = _clipped_to_bytes(text, max(floor, _escaped_size(text) - over), keep_end=keep_end)
    return details


def _escaped_size(text: str) -> int:
    return sum(map(_escaped_char_size, text))


def _escaped_char_size(char: str) -> int:
    """Bytes of one character in json.dumps' ASCII-escaped output."""
    code = ord(char)
    if code > 0xFFFF:
        return 12  # a surrogate pair, two \uXXXX
    if code > 0x7E or code < 0x20 and char not in "\n\r\t\b\f":
        return 6  # \uXXXX
    return 2 if char in '"\\\n\r\t\b\f' else 1


def _clipped_to_bytes(text: str, max_bytes: int, *, keep_end: bool) -> str:
    """`text` within max_bytes escaped, "…" (6 bytes) where it was cut."""
    budget, used, kept = max_bytes - 6, 0, 0
    for char in reversed(text) if keep_end else text:
        used += _escaped_char_size(char)
        if used > budget:
            break
        kept += 1
    if kept == len(text):
        return text
    return "…" + text[len(text) - kept :] if keep_end else text[:kept] + "…"


@dataclass(frozen=True)
class ErrorAction:
    """What happens after a failed attempt."""

    error_type: ErrorType
    retry: bool
    delay: float | None = None  # seconds before the next attempt
    hint: str = ""

    def next_attempt_at(self, now: datetime) -> datetime | None:
        return now + timedelta(seconds=self.delay) if self.retry else None


class ErrorHandler:
    """Decides, per error class, what a failed attempt leads to (the design's ErrorHandler).

    It only decides; the job manager records the outcome with the job's state change.
    """

    async def handle_job_error(self, job, error: BaseException, context: dict | None = None) -> ErrorAction:
        return self.handle_job_error_sync(job, error, context)

    def handle_job_error_sync(self, job, error: BaseException, context: dict | None = None) -> ErrorAction:
        """`job` is the Job row whose attempt failed (its type, attempts and max_attempts)."""
        context = context or {}
        error_type = self.classify_error(error, context)
        handler = {
            ErrorType.TRANSIENT: self.handle_transient_error,
            ErrorType.CONFIGURATION: self.handle_configuration_error,
            ErrorType.DATA: self.handle_data_error,
            ErrorType.SYSTEM: self.handle_system_error,
        }[error_type]
        return handler(job, error, context)

    def classify_error(self, error: BaseException, context: dict | None = None) -> ErrorType:
        return classify_error(error, context)

    def handle_transient_error(self, job, error, context) -> ErrorAction:
        return self._retry_if_attempts_left(job, ErrorType.TRANSIENT, "Retried automatically with backoff.")

    def handle_system_error(self, job, error, context) -> ErrorAction:
        # Another worker or machine may have the memory or disk this one lacked.
        return self._retry_if_attempts_left(job, ErrorType.SYSTEM, "Retried, possibly on another worker.")

    def handle_configuration_error(self, job, error, context) -> ErrorAction:
        return ErrorAction(
            ErrorType.CONFIGURATION, retry=False, hint="Not retried: fix the configuration, then retry the job."
        )

    def handle_data_error(self, job, error, context) -> ErrorAction:
        return ErrorAction(ErrorType.DATA, retry=False, hint="Not retried: the input is invalid; fix it and resubmit.")

    def _retry_if_attempts_left(self, job, error_type: ErrorType, hint: str) -> ErrorAction:
        from jobs.registry import retry_manager_for

        manager = retry_manager_for(job.job_type)
        if manager.should_retry_sync(error_type, job.attempts, job.max_attempts):
            return ErrorAction(error_type, retry=True, delay=manager.calculate_delay(job.attempts), hint=hint)
        return ErrorAction(error_type, retry=False, hint=f"Not retried: all {job.max_attempts} attempts used.")
