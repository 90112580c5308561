"""Pages whose database is unreachable answer 503 (try again shortly), not 500 (a bug), and
the API's errors that no API view produced still come in the API's format.

The API has its own handler with the same 503 (monitoring/api_errors.py). The page is
static: rendering a template could need the database again (the user, the session).
"""

import logging

from django.conf import settings
from django.contrib.admin import helpers
from django.core.exceptions import DisallowedHost, RequestDataTooBig, ValidationError
from django.db import DataError
from django.http import HttpResponse, HttpResponseBadRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.defaults import bad_request

from monitoring.api_errors import json_error
from monitoring.pending import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Database unavailable</title></head>
<body><h1>Database unavailable</h1><p>The monitor cannot reach its database right now.
Jobs already running keep their events and write them when it is back. Reload in a few seconds.</p></body></html>
"""


# Scripts only from this site's own files (no page has an inline script or event handler):
# markup that got through escaping runs nothing. 'unsafe-eval' because htmx evaluates the polls'
# trigger conditions ([document.visibilityState === 'visible'], poll_trigger.html). Styles are
# left alone (admin and the API docs set some inline).
CONTENT_SECURITY_POLICY = (
    "script-src 'self' 'unsafe-eval'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def content_security_policy(get_response):
    def middleware(request):
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return middleware


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        logger.warning("%s %s failed, database unavailable: %s", request.method, request.path, exception)
        # An htmx poll does not swap an error response in: the page keeps its last data.
        response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
        response["Retry-After"] = "5"
        return response


class ApiMiddleware:
    """django-ninja knows only the methods an operation declares. The API answers HEAD as GET,
    as Django's own views do (uptime monitors check with HEAD; the server drops the body), and
    a method a path does not have with a JSON 405 naming those it has, not ninja's plain text.
    No answer may be cached, as the dashboard's pages: they carry job data and change by the second."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        if request.method == "HEAD":
            request.method = "GET"
            try:
                response = self.get_response(request)
            finally:
                request.method = "HEAD"  # what the server and the logs see
        else:
            response = self.get_response(request)
        if response.status_code == 405 and response.has_header("Allow"):
            allowed = response["Allow"]
            if "GET" in allowed.split(", ") and "HEAD" not in allowed:
                allowed += ", HEAD"  # answered like GET (above)
            response = json_error(405, f"method {request.method} not allowed here; allowed: {allowed}")
            response["Allow"] = allowed
        add_never_cache_headers(response)
        return response


def api_bad_request(request, exception):
    """Django's 400 (requests refused before any view: too many fields, a bad Host) in the
    API's format under /api/, its plain page elsewhere. A form too large to read (a paste into
    the run form's parameters) is a 413 saying so, in plain text dashboard.js shows as it is
    (Django's page, swapped in by htmx, replaced the operator's page with "Bad Request")."""
    if request.path.startswith("/api/"):
        if isinstance(exception, DisallowedHost):  # not Django's hint naming the setting to change
            return json_error(400, "bad request: this server does not answer to that Host header")
        return json_error(400, f"bad request: {exception}")
    if isinstance(exception, RequestDataTooBig):
        limit = filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE).replace("\xa0", " ")
        text = f"Refused: the form sent more than {limit}, the most the server reads from one form. Nothing was saved."
        return HttpResponse(text, status=413, content_type="text/plain; charset=utf-8")
    return bad_request(request, exception)


# Admin's own query parameters (search, ordering, page, error flag, popups): not filters.
ADMIN_RESERVED_PARAMETERS = {"q", "o", "p", "e", "all", "_popup", "_to_field", "_changelist_filters"}


class AdminFilterValueMiddleware:
    """Admin's changelists hand any query-string filter on a model field (`?status=…`, not only
    those of `list_filter`) to the database as it is. On Postgres a NUL in a text value, or a
    value an array column cannot parse, is a DataError: a 500 for a mistyped URL. Here it is a 400
    naming the parameter: NULs are refused before the view (in the path too: the object id of a
    text primary key, a paused job type's, went to the database as it was), anything else the
    database refuses in a GET is answered from the exception (the message's first line only: no
    SQL). So is an integer too big for Python's C types: a date hierarchy's year (a datetime), an
    id on SQLite.
    An action's POST whose ticked rows are not ids of the list's model is a 400 too."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._prefix = None

    def _is_admin(self, request) -> bool:
        if self._prefix is None:
            self._prefix = reverse("admin:index")
        return request.path.startswith(self._prefix)

    def __call__(self, request):
        if self._is_admin(request):
            if "\x00" in request.path:  # an object id of a text primary key (a paused job type)
                return _bad_request(f"Invalid URL: {_printable(request.path)}: NUL characters are not allowed")
            for key, values in request.GET.lists():
                if "\x00" in key or any("\x00" in value for value in values):
                    return _bad_filter(f"{_printable(key)}: NUL characters are not allowed")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.method == "POST" and self._is_admin(request):
            return _bad_selection(request)
        refused = isinstance(exception, (DataError, OverflowError))
        if request.method != "GET" or not refused or not self._is_admin(request):
            return None
        filters = sorted(key for key in request.GET if key not in ADMIN_RESERVED_PARAMETERS)
        if not filters:
            return None  # not about the query string: a real error
        reason = str(exception).splitlines()[0] if str(exception) else type(exception).__name__
        logger.info("admin filter refused by the database: %s %s: %s", request.path, filters, reason)
        return _bad_filter(f"{', '.join(_printable(key) for key in filters)}: a value does not fit its field ({reason})")


def _bad_selection(request) -> HttpResponse | None:
    """A 400 when an action's ticked rows (`_selected_action`) hold a value that is no id of the
    list's model: admin filters `pk__in` by them as they come, and the checkboxes can be hand-made."""
    model_admin = getattr(request.resolver_match.func, "model_admin", None) if request.resolver_match else None
    if model_admin is None:
        return None
    pk = model_admin.model._meta.pk
    for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
        try:
            pk.run_validators(pk.to_python(value))
        except ValidationError:
            message = f"{_printable(value)!r} is no id of a {model_admin.model._meta.verbose_name}"
            return _bad_request(f"Invalid selection: {helpers.ACTION_CHECKBOX_NAME}: {message}")
    return None  # every value is an id: a real error


def _printable(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")[:100]


def _bad_filter(message: str) -> HttpResponse:
    return _bad_request(f"Invalid filter: {message}")


def _bad_request(text: str) -> HttpResponse:
    return HttpResponseBadRequest(f"{text}\n", content_type="text/plain; charset=utf-8")
