"""A stand-in for the AI matching service, served only with DEMO_MODE on.

It behaves like a real dependency: it wants the API key, takes a little while, and now
and then answers 503, so the demo shows transient failures being retried. For one minute in
every OVERLOAD_EVERY_MINUTES (by the clock) it is overloaded and answers 503 far more often:
the Health page turns warning, ai_matching jobs fail for good and raise their alerts, then it
recovers and they clear, where a steady 10 % kept the service "warning" all the time.
"""

import hashlib
import hmac
import json
import random
import time

from django.conf import settings
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

MAX_BATCH = 500
OVERLOAD_EVERY_MINUTES = 20


def _score(job_posting_id, candidate_id) -> float:
    # surrogatepass: JSON may carry a lone surrogate (\ud800), which UTF-8 cannot encode.
    digest = hashlib.sha256(f"{job_posting_id}:{candidate_id}".encode("utf-8", "surrogatepass")).digest()
    return round(int.from_bytes(digest[:4]) / 2**32, 4)


def failure_rate(now: float) -> float:
    """The share of calls answered 503 at `now` (a Unix time): the last minute of every
    OVERLOAD_EVERY_MINUTES is an overload."""
    overloaded = int(now // 60) % OVERLOAD_EVERY_MINUTES == OVERLOAD_EVERY_MINUTES - 1
    return settings.DEMO_AI_OVERLOAD_FAILURE_RATE if overloaded else settings.DEMO_AI_FAILURE_RATE


def _require_demo_mode() -> None:
    if not settings.DEMO_MODE:
        raise Http404


@require_GET
def health(request):
    _require_demo_mode()
    return JsonResponse({"status": "ok"})


@csrf_exempt  # a machine-to-machine API authenticated by its key, like the real service
@require_POST
def match(request):
    _require_demo_mode()
    key = settings.DEMO_AI_SERVICE_KEY
    sent = request.headers.get("Authorization", "").encode("utf-8", "surrogatepass")
    if not key or not hmac.compare_digest(sent, f"Bearer {key}".encode("utf-8", "surrogatepass")):
        return JsonResponse({"error": "invalid or missing API key"}, status=401)
    try:
        body = json.loads(request.body)
        job_posting_id = body["job_posting_id"]
        candidate_ids = body["candidate_ids"]
        if not isinstance(candidate_ids, list) or not 1 <= len(candidate_ids) <= MAX_BATCH:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": f"expected job_posting_id and 1-{MAX_BATCH} candidate_ids"}, status=400)
    time.sleep(random.uniform(0.02, 0.2))
    if random.random() < failure_rate(time.time()):
        return JsonResponse({"error": "model server overloaded, try again"}, status=503)
    matches = [{"candidate_id": c, "score": _score(job_posting_id, c)} for c in candidate_ids]
    return JsonResponse({"matches": matches})
