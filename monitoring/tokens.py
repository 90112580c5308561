"""API tokens: create, revoke, and authenticate a request's bearer token.

A token is 256 random bits; the database keeps only its sha256. Looking a token up by the
hash of what the client sent is safe against timing attacks: an attacker controls the
input of the hash, not the hash, so a partial match teaches nothing.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import User

from jobs import clock
from monitoring.auth_backends import remember_permissions, with_permission_names
from monitoring.models import ApiToken

TOKEN_PREFIX = "jm_"
# last_used_at is for operators ("is this token still used?"), not an audit log: writing it
# on every request would turn each read into a write, so it moves at most once a minute.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def api_token_create(*, user: User, name: str, description: str = "") -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the token itself (shown once, never stored)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        description=description,
        token_hash=hash_token(raw),
        prefix=raw[: len(TOKEN_PREFIX) + 6],
    )
    return token, raw


def api_tokens_revoke(*, tokens) -> int:
    """Revoke the given tokens (a queryset); revoking a revoked token changes nothing."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=clock.now())


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The active token `raw` is, with its user loaded; None if unknown, revoked or its user inactive."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    digest = hash_token(raw)
    tokens = ApiToken.objects.select_related("user").filter(token_hash=digest, revoked_at__isnull=True)
    token = with_permission_names(tokens, ApiToken.user.field.column).first()
    if token is None or not hmac.compare_digest(token.token_hash, digest) or not token.user.is_active:
        return None
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
