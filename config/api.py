"""The REST API (django-ninja), mounted at /api/: one NinjaAPI, a router per app.

Docs: docs/api.md; interactive at /api/docs (login required), schema at /api/openapi.json.
"""

import json
from datetime import UTC, datetime
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.openapi.views import openapi_json
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from jobs.api import document_job_types, document_replay_header, job_types_documented
from jobs.api import router as jobs_router
from jobs.payloads import loads_refusing_repeated_keys
from monitoring.api import router as monitoring_router
from monitoring.api_auth import ApiToken, requires
from monitoring.api_errors import install_error_handlers, json_error, refuse_repeated_query_parameters


def docs_access(view):
    """The docs page needs a login; the schema also answers an API token (for generated clients).
    Only GET and HEAD: another method is the API's JSON 405 (monitoring.middleware.ApiMiddleware),
    not Django's HTML CSRF page, which a token's POST got (CSRF exempt: nothing here acts)."""
    serves_schema = getattr(view, "func", None) is openapi_json

    @csrf_exempt
    @require_safe
    @wraps(view)
    def guarded(request, *args, **kwargs):
        # The token first, as every operation's auth: a wrong one is a 401 even beside a session.
        if serves_schema and "Authorization" in request.headers:
            try:
                if ApiToken()(request):
                    return view(request, *args, **kwargs)
            except HttpError as e:  # an invalid token: the same 401 as anywhere in the API
                return _unauthenticated(str(e)) if e.status_code == 401 else json_error(e.status_code, str(e))
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if not serves_schema:
            return redirect_to_login(request.get_full_path())
        return _unauthenticated("authentication required: log in, or send 'Authorization: Bearer <token>'")

    return guarded


def _unauthenticated(detail: str):
    response = json_error(401, detail)
    response["WWW-Authenticate"] = 'Bearer realm="api"'  # as every other 401 of the API
    return response


class StrictParser(Parser):
    """A parameter or body key given twice is refused, not "the last one wins"."""

    def parse_body(self, request):
        return loads_refusing_repeated_keys(request.body)

    def parse_querydict(self, data, list_fields, request):
        refuse_repeated_query_parameters(data, list_fields)
        return super().parse_querydict(data, list_fields, request)


class TimestampEncoder(NinjaJSONEncoder):
    """Every moment as docs/api.md promises it: UTC, `Z`, to the millisecond, always three digits
    (Django's encoder drops a zero fraction, 03:00:00Z beside 03:00:00.120Z, which a client
    parsing one fixed format refuses), whatever offset the moment came with (an `until` sent
    with +02:00 is answered in UTC)."""

    def default(self, o):
        if isinstance(o, datetime) and o.tzinfo is not None:
            return o.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return super().default(o)


class ApiRenderer(JSONRenderer):
    encoder_class = TimestampEncoder


class JobMonitorAPI(NinjaAPI):
    # (what the schema was built for, its JSON): ninja builds it anew on each request otherwise,
    # walking every operation and model (70-370 ms a request of /api/openapi.json).
    _built_schema: tuple[tuple, str] | None = None

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        """The schema, built once per process and again only when what it is built from changes
        at run time: the prefix the API is served under, and the registered job types (their
        parameters are documented in it). A new copy each time: a caller may change it."""
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        key = (path_prefix, job_types_documented())
        built = self._built_schema  # read once: another thread may replace it
        if built is None or built[0] != key:
            schema = super().get_openapi_schema(path_prefix=path_prefix)
            document_job_types(schema)
            document_replay_header(schema, path_prefix)
            built = self._built_schema = (key, json.dumps(schema, cls=NinjaJSONEncoder))
        return json.loads(built[1])


api = JobMonitorAPI(
    title="Job monitor API",
    version="1",
    description=(
        "Monitor and control the platform's background jobs. Authenticate with a session (browser; "
        "unsafe methods need the CSRF token) or `Authorization: Bearer <token>` "
        "(`manage.py create_api_token USERNAME`). Errors are `{detail, errors: [{field, message}]}`."
    ),
    urls_namespace="api",
    parser=StrictParser(),
    renderer=ApiRenderer(),
    # The default for operations that do not name a permission; it also tells the docs page
    # to send the CSRF token with its requests.
    auth=requires(),
    docs_decorator=docs_access,
)
install_error_handlers(api)
api.add_router("/monitoring/", monitoring_router)
api.add_router("/jobs", jobs_router)


@csrf_exempt  # it acts on nothing: a token's POST to a mistyped path got Django's HTML CSRF 403, not this
def not_found(request, path=""):
    """Unknown /api/ paths answer in the API's format, not with the HTML 404 page, whatever the method."""
    return json_error(404, f"no API endpoint at {request.path}")
