"""Pages whose database is unreachable answer 503 (try again shortly), not 500 (a bug), and
the API's errors that no API view produced still come in the API's format.

The API has its own handler with the same 503 (monitoring/api_errors.py). The page is
static: rendering a template could need the database again (the user, the session).
"""

import logging

from django.http import HttpResponse
from django.views.defaults import bad_request

from monitoring.api_errors import json_error
from monitoring.pending import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Database unavailable</title></head>
<body><h1>Database unavailable</h1><p>The monitor cannot reach its database right now.
Jobs already running keep their events and write them when it is back. Reload in a few seconds.</p></body></html>
"""


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


class ApiMethodNotAllowedMiddleware:
    """django-ninja answers a method an API path does not have with a plain-text 405; clients
    of the API expect its JSON errors, saying which methods the path has."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 405 and request.path.startswith("/api/") and response.has_header("Allow"):
            allowed = response["Allow"]
            response = json_error(405, f"method {request.method} not allowed here; allowed: {allowed}")
            response["Allow"] = allowed
        return response


def api_bad_request(request, exception):
    """Django's 400 (requests refused before any view: too many fields, a bad Host) in the
    API's format under /api/, its plain page elsewhere."""
    if request.path.startswith("/api/"):
        return json_error(400, f"bad request: {exception}")
    return bad_request(request, exception)
