"""The built-in job types: two demo jobs that exercise every path, and AI matching."""

from typing import Literal

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from pydantic import BaseModel, ConfigDict, Field

from jobs.context import JobContext
from jobs.registry import job_executor


class StrictParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SleepParams(StrictParams):
    seconds: float = Field(default=5.0, ge=0, le=3600)
    steps: int = Field(default=10, ge=1, le=1000)


@job_executor("demo.sleep", params=SleepParams, description="Sleeps, reporting progress in `steps` steps.")
def demo_sleep(params: dict, ctx: JobContext) -> dict:
    steps = params["steps"]
    for step in range(1, steps + 1):
        ctx.sleep(params["seconds"] / steps)
        ctx.progress(step * 100 // steps, f"step {step}/{steps}")
    return {"slept_seconds": params["seconds"], "steps": steps}


class FailParams(StrictParams):
    error_class: Literal["transient", "configuration", "data", "system"] = "transient"
    fail_times: int = Field(default=1, ge=0, le=100)


def _simulated_error(error_class: str, attempt: int) -> Exception:
    """A realistic exception of each class, classified by its type like a real one."""
    request = httpx.Request("POST", "https://ai-matching.invalid/match")
    return {
        "transient": httpx.ConnectTimeout(f"simulated: connection timed out (attempt {attempt})", request=request),
        "configuration": ImproperlyConfigured("simulated: AI_MATCHING_API_KEY is not set"),
        "data": ValidationError(f"simulated: candidate record {attempt} is malformed"),
        "system": MemoryError("simulated: out of memory"),
    }[error_class]


@job_executor(
    "demo.fail",
    params=FailParams,
    description="Fails its first `fail_times` attempts with an error of `error_class`, then succeeds.",
)
def demo_fail(params: dict, ctx: JobContext) -> dict:
    ctx.progress(50, f"attempt {ctx.attempt}")
    if ctx.attempt <= params["fail_times"]:
        raise _simulated_error(params["error_class"], ctx.attempt)
    return {"succeeded_on_attempt": ctx.attempt}


class MatchingParams(StrictParams):
    candidate_ids: list[int | str] = Field(min_length=1, max_length=10_000)
    job_posting_id: int | str


MATCHING_BATCH = 50


@job_executor(
    "ai_matching",
    params=MatchingParams,
    timeout=600,
    description="Scores candidates against a job posting with the AI matching service.",
)
def ai_matching(params: dict, ctx: JobContext) -> dict:
    if not settings.AI_MATCHING_URL:
        raise ImproperlyConfigured("AI_MATCHING_URL is not set")
    if not settings.AI_MATCHING_API_KEY:
        raise ImproperlyConfigured("AI_MATCHING_API_KEY is not set")
    candidates = params["candidate_ids"]
    matches = []
    with httpx.Client(
        base_url=settings.AI_MATCHING_URL,
        timeout=settings.AI_MATCHING_TIMEOUT,
        headers={"Authorization": f"Bearer {settings.AI_MATCHING_API_KEY}"},
    ) as client:
        for start in range(0, len(candidates), MATCHING_BATCH):
            batch = candidates[start : start + MATCHING_BATCH]
            response = client.post("/match", json={"job_posting_id": params["job_posting_id"], "candidate_ids": batch})
            response.raise_for_status()  # 429/5xx: transient, 401/403: configuration, 4xx: data
            matches.extend(response.json()["matches"])
            done = start + len(batch)
            ctx.progress(done * 100 // len(candidates), f"scored {done}/{len(candidates)} candidates")
    matches.sort(key=lambda match: match["score"], reverse=True)
    return {"job_posting_id": params["job_posting_id"], "scored": len(matches), "top_matches": matches[:10]}
