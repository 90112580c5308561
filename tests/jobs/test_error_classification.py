import errno
import json

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DataError, IntegrityError, OperationalError
from django_q.exceptions import TimeoutException

from jobs.errors import (
    ConfigurationJobError,
    DataJobError,
    ErrorType,
    SystemJobError,
    TransientJobError,
    classify_error,
    error_details,
    error_fingerprint,
)
from jobs.payloads import MAX_JSON_BYTES, to_json_value


def http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://svc.invalid/")
    return httpx.HTTPStatusError("boom", request=request, response=httpx.Response(status, request=request))


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
        http_error(408),
        http_error(429),
        http_error(500),
        http_error(502),
        http_error(503),
        http_error(504),
        http_error(507),  # any 5xx: the service's trouble, not our request's
        OperationalError("server closed the connection unexpectedly"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        TimeoutError("timed out"),
        TimeoutException("Task exceeded maximum timeout value (5 seconds)"),
        TransientJobError("explicit"),
    ],
)
def test_transient(error):
    assert classify_error(error) == ErrorType.TRANSIENT


@pytest.mark.parametrize(
    "error",
    [
        ImproperlyConfigured("AI_MATCHING_API_KEY is not set"),
        http_error(401),
        http_error(403),
        http_error(407),
        httpx.UnsupportedProtocol("no scheme"),
        ConfigurationJobError("explicit"),
    ],
)
def test_configuration(error):
    assert classify_error(error) == ErrorType.CONFIGURATION


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("malformed"),
        ValueError("invalid literal"),
        KeyError("candidate_ids"),
        IntegrityError("duplicate key value violates unique constraint"),
        DataError("value too long for type character varying(100)"),
        http_error(422),
        DataJobError("explicit"),
    ],
)
def test_data(error):
    assert classify_error(error) == ErrorType.DATA


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EMFILE, "Too many open files"),
        SystemJobError("explicit"),
        RuntimeError("something unexpected"),
    ],
)
def test_system(error):
    assert classify_error(error) == ErrorType.SYSTEM


def test_context_decides_what_the_type_cannot():
    assert classify_error(RuntimeError("bad"), {"phase": "validate_parameters"}) == ErrorType.DATA
    assert classify_error(RuntimeError("bad"), {"phase": "configure"}) == ErrorType.CONFIGURATION


def test_error_details_carry_type_message_traceback_and_a_stable_fingerprint():
    try:
        raise httpx.ConnectTimeout("connect to 10.0.0.7:443 timed out after 5.0s")
    except httpx.ConnectTimeout as e:
        details = error_details(e, ErrorType.TRANSIENT, retryable=True)
    assert details["type"] == "httpx.ConnectTimeout"
    assert details["error_class"] == "transient"
    assert details["retryable"] is True
    assert "Traceback" in details["traceback"] and "test_error_details" in details["traceback"]
    # Same error with other numbers: same group in the error analysis.
    assert details["fingerprint"] == error_fingerprint(
        "httpx.ConnectTimeout", "connect to 10.0.0.9:443 timed out after 7.5s"
    )
    assert details["fingerprint"] != error_fingerprint("httpx.ConnectTimeout", "name resolution failed")


def test_error_details_fit_what_an_event_holds_cutting_the_message_then_the_traceback():
    """Sizes count bytes of ASCII-escaped JSON: 1 for "a", 2 for a newline, 6 for "数", 12 for "😀"."""
    try:
        try:
            raise KeyError("数" * 9_000)
        except KeyError as cause:
            raise ValueError("😀" * 9_000) from cause
    except ValueError as e:
        details = error_details(e, ErrorType.DATA, retryable=False)

    assert len(json.dumps(details)) <= MAX_JSON_BYTES
    assert to_json_value(details) == details  # stored whole, not replaced by a summary
    assert details["fingerprint"] == error_fingerprint("ValueError", "😀" * 9_000)
    assert details["message"].startswith("😀😀😀") and details["message"].endswith("…")
    # Both exceptions' frames, each message line cut short.
    assert 'raise KeyError("数" * 9_000)' in details["traceback"]
    assert 'raise ValueError("😀" * 9_000) from cause' in details["traceback"]


def test_a_traceback_too_long_to_fit_keeps_its_end_where_the_error_was_raised():
    def fail(depth):
        try:
            if depth:
                fail(depth - 1)
            raise KeyError("数" * 3_000)
        except Exception as cause:
            raise ValueError(f"level {depth}: " + "数" * 3_000) from cause

    try:
        fail(10)  # a KeyError and eleven ValueErrors chained, a 2,000-character line each
    except ValueError as e:
        details = error_details(e, ErrorType.DATA, retryable=False)

    assert len(json.dumps(details)) <= MAX_JSON_BYTES
    assert details["traceback"].startswith("…") and "ValueError: level 10: 数数" in details["traceback"]
    assert "ValueError: level 0:" not in details["traceback"]  # the first raised: cut with the start
    assert details["message"].endswith("…") and details["message"].startswith("level 10: 数数")


def test_ascii_error_details_within_the_limits_are_kept_as_they_are():
    try:
        raise ValueError("bad candidate record\n" * 400)
    except ValueError as e:
        details = error_details(e, ErrorType.DATA, retryable=False)
    assert details["message"] == "bad candidate record\n" * 400 and details["traceback"].startswith("Traceback")


def test_a_connection_error_names_the_request_it_was_about():
    """Drill: with the AI service down, every failure read "[Errno 111] Connection refused",
    naming no service. The request's method and origin say which (not its path, query or
    credentials: a webhook's path is its secret)."""
    request = httpx.Request("POST", "http://user:pw@ai.internal:8199/hooks/T000/SECRET?api_key=key")
    refused = httpx.ConnectError("[Errno 111] Connection refused", request=request)
    details = error_details(refused, ErrorType.TRANSIENT, retryable=True)

    assert details["message"] == "[Errno 111] Connection refused (POST http://ai.internal:8199)"
    # Another service refusing is another group in the error analysis.
    crm = httpx.Request("GET", "http://crm.internal:8199/contacts")
    other = httpx.ConnectError("[Errno 111] Connection refused", request=crm)
    assert error_details(other, ErrorType.TRANSIENT, retryable=True)["fingerprint"] != details["fingerprint"]


def test_an_error_without_a_request_keeps_its_message():
    details = error_details(httpx.ConnectError("refused"), ErrorType.TRANSIENT, retryable=True)
    assert details["message"] == "refused"


def test_an_error_status_records_the_service_called_and_its_status():
    """Drill: the AI service answered its health URL while every job call got 503. The health
    check counts failed job calls per service by these two keys (origin only: no path, no secret)."""
    request = httpx.Request("POST", "http://user:pw@ai.internal:8199/match?api_key=key")
    response = httpx.Response(503, request=request)
    error = httpx.HTTPStatusError("Server error '503 Service Unavailable'", request=request, response=response)

    details = error_details(error, ErrorType.TRANSIENT, retryable=True)

    assert (details["service_origin"], details["http_status"]) == ("http://ai.internal:8199", 503)
    assert details["message"] == "Server error '503 Service Unavailable'"  # as before


def test_a_transport_error_records_the_service_it_could_not_reach():
    request = httpx.Request("POST", "http://ai.internal:8199/match")
    details = error_details(httpx.ReadTimeout("timed out", request=request), ErrorType.TRANSIENT, retryable=True)
    assert details["service_origin"] == "http://ai.internal:8199"
    assert "http_status" not in details


def test_an_error_with_no_request_records_no_service():
    for error in (httpx.ConnectError("refused"), ValueError("bad input")):
        details = error_details(error, ErrorType.TRANSIENT, retryable=True)
        assert "service_origin" not in details and "http_status" not in details
