"""API tokens: create, revoke, and authenticate a request's bearer token.

A token is 256 random bits; the database keeps only its sha256. Looking a token up by the
hash of what the client sent is safe against timing attacks: an attacker controls the
input of the hash, not the hash, so a partial match teaches nothing.

Tokens expire (90 days unless told otherwise, as GitHub's and GitLab's personal access tokens):
one leaked in a CI log does not stay good forever. Expiry is read from the token's row on each
request, in the query that finds it, so a token shortened in admin stops on every node at once.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from jobs import clock
from monitoring.auth_backends import remember_permissions, with_permission_names
from monitoring.models import EXPIRES_SOON, ApiToken, TokenStatus

TOKEN_PREFIX = "jm_"
# last_used_at is for operators ("is this token still used?"), not an audit log: writing it
# on every request would turn each read into a write, so it moves at most once a minute.
LAST_USED_RESOLUTION = timedelta(minutes=1)
DEFAULT_LIFETIME = timedelta(days=90)
# A token used within this is an integration's: its expiry is worth a warning ahead of time.
IN_USE = timedelta(days=30)


class ApiTokenExpired(Exception):
    """The token is right but past its expiry: its owner should renew it, not hunt a typo."""

    def __init__(self, token: ApiToken):
        super().__init__(f"API token {token.prefix}… expired at {token.expires_at.isoformat()}")
        self.token = token


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def api_token_create(
    *, user: User, name: str, description: str = "", lifetime: timedelta | None = DEFAULT_LIFETIME
) -> tuple[ApiToken, str]:
    """A new token for `user`, expiring after `lifetime` (None: never); returns the row and the
    token itself (shown once, never stored)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        description=description,
        token_hash=hash_token(raw),
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        created_at=now,
        expires_at=None if lifetime is None else now + lifetime,
    )
    return token, raw


def api_tokens_revoke(*, tokens) -> int:
    """Revoke the given tokens (a queryset); revoking a revoked token changes nothing."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=clock.now())


def token_status_q(status: str, now) -> Q:
    """The tokens whose ApiToken.status(now) is `status`, as a filter (admin's status filter)."""
    live = Q(revoked_at__isnull=True)
    return {
        TokenStatus.REVOKED: Q(revoked_at__isnull=False),
        TokenStatus.EXPIRED: live & Q(expires_at__lte=now),
        TokenStatus.EXPIRES_SOON: live & Q(expires_at__gt=now, expires_at__lte=now + EXPIRES_SOON),
        TokenStatus.ACTIVE: live & (Q(expires_at__isnull=True) | Q(expires_at__gt=now + EXPIRES_SOON)),
    }[status]


def api_tokens_expiring_in_use(now) -> QuerySet:
    """Tokens used within IN_USE that expire within EXPIRES_SOON, or have expired since their last
    use (their program now gets 401s), the soonest first. Served by api_tokens_expiring_idx: the
    recently used tokens, however many expired or unused ones pile up."""
    return ApiToken.objects.filter(
        revoked_at__isnull=True,
        expires_at__isnull=False,
        last_used_at__gte=now - IN_USE,
        expires_at__lte=now + EXPIRES_SOON,
    ).order_by("expires_at", "id")


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The active token `raw` is, with its user loaded; None if unknown, revoked or its user inactive.

    Raises ApiTokenExpired for a token past its expiry (read from its row in the same query: no
    extra one), so a caller that does not handle it refuses the request too."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    digest = hash_token(raw)
    tokens = ApiToken.objects.select_related("user").filter(token_hash=digest, revoked_at__isnull=True)
    token = with_permission_names(tokens, ApiToken.user.field.column).first()
    if token is None or not hmac.compare_digest(token.token_hash, digest) or not token.user.is_active:
        return None
    if token.is_expired(clock.now()):
        raise ApiTokenExpired(token)
    remember_permissions(token.user, token)
    _touch(token)
    return token


def _touch(token: ApiToken) -> None:
    now = clock.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    # Conditional, so concurrent requests on several processes write it once.
    stale = now - LAST_USED_RESOLUTION
    ApiToken.objects.filter(id=token.id).exclude(last_used_at__gte=stale).update(last_used_at=now)
    token.last_used_at = now
