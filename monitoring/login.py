"""Logging in, with failed passwords counted: the dashboard's login page and admin's.

Django counts nothing: a drill sent 30 wrong passwords, then the right one, and was let in.
Failures are counted in the cache (the database's or Redis: every web process sees them) per
client address and username, and per client address alone (one address trying many names).
Past the limit the form refuses before checking the password, for LOGIN_THROTTLE["MINUTES"]
from the first failure, and says so. A success clears its username's count. The client's address
is REMOTE_ADDR, or behind TRUSTED_PROXIES proxies the one X-Forwarded-For's outermost trusted
proxy saw: otherwise everyone behind a proxy would share its count. A cache that fails (Redis
down) counts nothing rather than keep everyone out at 3 a.m.
"""

import hashlib
import logging

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

logger = logging.getLogger(__name__)


def client_address(request) -> str:
    """Who sent the request: REMOTE_ADDR, or behind TRUSTED_PROXIES proxies the address the
    outermost of them received from (each appends its own peer to X-Forwarded-For, so entries
    further left were written by the client and prove nothing)."""
    address = request.META.get("REMOTE_ADDR", "")
    if proxies := settings.TRUSTED_PROXIES:
        forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies and forwarded[-proxies]:
            address = forwarded[-proxies]
    return address


class LoginThrottle:
    def __init__(self, request, username: str):
        address = client_address(request) if request is not None else ""
        name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]  # any text, a safe key
        self.address, self.username = address, username
        self.keys = {f"login-failures:{address}:{name}": "FAILURES", f"login-failures:{address}": "PER_ADDRESS"}

    def refused(self) -> bool:
        try:
            counts = cache.get_many(list(self.keys))
        except Exception:
            logger.warning("failed logins cannot be counted: the cache failed", exc_info=True)
            return False
        return any(counts.get(key, 0) >= settings.LOGIN_THROTTLE[limit] for key, limit in self.keys.items())

    def failed(self) -> None:
        window = settings.LOGIN_THROTTLE["MINUTES"] * 60
        try:
            for key in self.keys:
                cache.add(key, 0, timeout=window)  # the window runs from the first failure: add() sets only
                try:
                    cache.incr(key)
                except ValueError:  # expired between the two calls
                    cache.add(key, 1, timeout=window)
        except Exception:
            logger.warning("a failed login was not counted: the cache failed", exc_info=True)
            return
        if self.refused():
            logger.warning("logins refused for %r from %s: too many failed passwords", self.username, self.address)

    def succeeded(self) -> None:
        try:
            cache.delete(next(iter(self.keys)))  # this username's; the address's count stays
        except Exception:
            logger.warning("a login's failures were not cleared: the cache failed", exc_info=True)


class ThrottledLoginMixin:
    """An AuthenticationForm's clean(), refused past the failures allowed (LoginThrottle)."""

    def clean(self):
        throttle = LoginThrottle(self.request, self.data.get("username", ""))
        if throttle.refused():
            minutes = settings.LOGIN_THROTTLE["MINUTES"]
            raise ValidationError(
                f"Too many failed logins from here: try again in {minutes} minutes at the latest.", code="throttled"
            )
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if error.code == "invalid_login":
                throttle.failed()
            raise
        if self.get_user() is not None:  # not a form missing its password, which would clear the count
            throttle.succeeded()
        return cleaned


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
