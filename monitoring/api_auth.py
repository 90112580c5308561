"""Who may call the API: a logged-in browser session or `Authorization: Bearer <token>`.

Every operation says which permission it needs (`auth=requires(VIEW_JOBS)`): no
credentials is a 401, credentials without the permission a 403, both decided before the
request's parameters or body are even read.
"""

from datetime import UTC

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthenticationError, AuthorizationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from monitoring.permissions import missing_permission
from monitoring.tokens import ApiTokenExpired, api_token_authenticate


class InvalidToken(AuthenticationError):
    def __init__(self):
        super().__init__(message="invalid or revoked API token")


class ExpiredToken(AuthenticationError):
    """Not "invalid": the script's owner should renew the token, not hunt a typo in it."""

    def __init__(self, expires_at):
        moment = expires_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        super().__init__(
            message=f"API token expired at {moment}: it needs renewing (manage.py create_api_token makes a new one)"
        )


class CsrfFailed(AuthorizationError):
    def __init__(self):
        super().__init__(
            message="CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header, from a page "
            "of this site (a request whose Origin is another site is refused however it is sent)"
        )


def _check_permission(user, permission: str | None):
    missing = missing_permission(user, permission)
    if missing:
        raise AuthorizationError(message=f"permission required: {missing}")
    return user


class ApiToken(HttpBearer):
    """`Authorization: Bearer jm_…` (create one with `manage.py create_api_token USERNAME`)."""

    def __init__(self, permission: str | None = None):
        self.permission = permission
        super().__init__()

    def __call__(self, request: HttpRequest):
        # Not ninja's own: with DEBUG on it logged a header of another scheme whole, so a token
        # sent as "Token jm_…" went to the log in full (a drill); and "Bearer  jm_…" (two spaces)
        # was a wrong token.
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None  # no bearer token: the session may authenticate
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str):
        try:
            found = api_token_authenticate(token)
        except ApiTokenExpired as e:
            raise ExpiredToken(e.token.expires_at) from None
        if found is None:
            # A wrong token is an error of its own, not a reason to try the session instead.
            raise InvalidToken()
        request.user = found.user
        request.api_token = found
        return _check_permission(found.user, self.permission)


class Session(APIKeyCookie):
    """The Django session of a logged-in browser; unsafe methods need the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, permission: str | None = None):
        self.permission = permission
        super().__init__(csrf=True)

    def __call__(self, request: HttpRequest):
        # Unlike ninja's SessionAuth, an anonymous request is a 401 rather than a CSRF 403:
        # there is no session whose use a forged request could ride on.
        if not request.user.is_authenticated:
            return None
        if check_csrf(request):  # safe methods pass
            raise CsrfFailed()
        return _check_permission(request.user, self.permission)

    def authenticate(self, request: HttpRequest, key: str | None):  # required by the base class; unused
        return None


def requires(permission: str | None = None) -> list:
    """The `auth=` of an operation: a token or a session, whose user has `permission`."""
    return [ApiToken(permission), Session(permission)]
