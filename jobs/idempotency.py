"""Idempotent submits: a client that sends a job again with the same `Idempotency-Key` (its
connection broke after the commit, or a 503 came back from a commit that in fact went through)
is answered the job it already made, not given a second one (two emails to a candidate).

Keys are per user and live IDEMPOTENCY_KEY_TTL; the same key with another request is refused,
as Stripe does. The key is written in the job's own transaction (EnhancedJobManager.submit_job).
"""

import hashlib
import json
from datetime import datetime, timedelta

from django.db import IntegrityError

from jobs.models import IdempotencyKey, Job

IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
# 1-255 printable ASCII characters (space included), as the API's schema says; a refused key is
# told the rule in words (IDEMPOTENCY_KEY_RULE), not this regex.
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"
IDEMPOTENCY_KEY_RULE = "must be 1 to 255 printable ASCII characters (space to ~), e.g. a UUID"


class IdempotencyKeyReused(Exception):
    """The key already made a job, for another request."""

    def __init__(self, key: str, job_id):
        self.key = key
        self.job_id = job_id
        super().__init__(
            f"Idempotency-Key {key!r} was used for another request within {_hours(IDEMPOTENCY_KEY_TTL)} hours "
            f"(job {job_id}); send a new key for a new job"
        )


class IdempotencyKeyTaken(Exception):
    """Another submit with the key committed first (on Postgres this one waited for its commit)."""


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)


def request_hash(job_type: str, parameters: dict | None, max_attempts: int | None) -> str:
    """The request as sent, in canonical JSON (keys sorted), hashed: what a replay must repeat."""
    canonical = json.dumps(
        {"job_type": job_type, "parameters": parameters or {}, "max_attempts": max_attempts},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # surrogatepass: a lone surrogate ("\ud800" in the JSON) is valid JSON but no UTF-8; it is hashed as sent.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def replayed_job(*, owner, key: str, fingerprint: str, now: datetime) -> Job | None:
    """The job `key` made for `owner` within the TTL (one query), or None. Raises
    IdempotencyKeyReused when it was made for another request."""
    found = IdempotencyKey.objects.select_related("job").filter(owner=owner, key=key).first()
    if found is None:
        return None
    if found.created_at <= now - IDEMPOTENCY_KEY_TTL:
        # A use of the key older than the TTL, not pruned yet, must not keep it taken. Deleted here,
        # when found, not before each insert: a submit with a new key costs its lookup and its insert.
        IdempotencyKey.objects.filter(pk=found.pk).delete()
        return None
    if found.request_hash != fingerprint:
        raise IdempotencyKeyReused(key, found.job_id)
    return found.job


def remember_key(*, owner, key: str, fingerprint: str, job: Job, now: datetime) -> None:
    """Record that `key` made `job`; call it inside the job's transaction. Raises
    IdempotencyKeyTaken when a concurrent submit holds the key: its transaction must roll back.
    Call replayed_job first: it frees a key whose TTL is over."""
    try:
        IdempotencyKey.objects.create(owner=owner, key=key, request_hash=fingerprint, job=job, created_at=now)
    except IntegrityError as e:
        raise IdempotencyKeyTaken(key) from e
