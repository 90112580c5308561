"""Pages whose database is unreachable answer 503 (try again shortly), not 500 (a bug).

The API has its own handler with the same answer (monitoring/api_errors.py). The response is
static: rendering a template could need the database again (the user, the session).
"""

import logging

from django.http import HttpResponse

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
