"""`make run`'s demo is lively but mostly healthy: its failures (the simulated AI service's 503s,
demo.fail jobs) keep retries and alerts coming, without holding the Health page at "warning".

The shares below are expectations over a sample of the demo's own jobs (run_demo's
random_demo_job, seeded), each attempt retried as its job type's retry policy says; the Health
page grades the same shares (monitoring/health.py: api.failed_calls_pct, jobs.failure_rate_pct)."""

import math
import random
from datetime import UTC, datetime

import pytest

from jobs import simulated_ai
from jobs.errors import RETRYABLE_ERROR_TYPES
from jobs.executors import MATCHING_BATCH
from jobs.management.commands.run_demo import random_demo_job
from jobs.registry import get_job_executor

ORDINARY_MINUTE = datetime(2026, 12, 7, 16, 5, 30, tzinfo=UTC)
OVERLOAD_MINUTE = datetime(2026, 12, 7, 16, 19, 30, tzinfo=UTC)  # the last minute of 16:00-16:20


@pytest.fixture(scope="module")
def demo_jobs() -> list[tuple[str, dict]]:
    rng = random.Random(2026)
    return [random_demo_job(rng) for _ in range(5000)]


def expected_attempts(job_type: str, parameters: dict, call_failure_rate: float) -> tuple[float, float]:
    """(failed attempts, attempts) expected of one demo job, retried up to its max_attempts."""
    max_attempts = get_job_executor(job_type).retry_manager.max_attempts
    if job_type == "ai_matching":
        calls = math.ceil(len(parameters["candidate_ids"]) / MATCHING_BATCH)
        fails = 1 - (1 - call_failure_rate) ** calls  # an attempt fails on its first 503
        return sum(fails**n for n in range(1, max_attempts + 1)), sum(fails**n for n in range(max_attempts))
    if job_type == "demo.fail":
        retried = parameters["error_class"] in RETRYABLE_ERROR_TYPES
        failed = min(parameters["fail_times"], max_attempts if retried else 1)
        return failed, min(failed + 1, max_attempts) if retried else 1
    return 0, 1


def failed_pct(jobs, call_failure_rate: float) -> float:
    failed, attempts = zip(*(expected_attempts(*job, call_failure_rate) for job in jobs), strict=True)
    return 100 * sum(failed) / sum(attempts)


def ai_matching_failed_calls_pct(jobs, now: datetime) -> float:
    rate = simulated_ai.failure_rate(now.timestamp())
    return failed_pct([job for job in jobs if job[0] == "ai_matching"], rate)


def test_the_ai_service_reads_healthy_outside_its_overload(demo_jobs, settings):
    """Drill: with 10 % of calls failing, a third of ai_matching attempts failed (several calls each):
    the Health page showed the service "warning" (30-46 %) all the time."""
    warning, _ = settings.HEALTH["THRESHOLDS"]["api.failed_calls_pct"]

    assert ai_matching_failed_calls_pct(demo_jobs, ORDINARY_MINUTE) < warning / 2


def test_the_ai_service_fails_most_attempts_in_its_overload_minute(demo_jobs, settings):
    _, critical = settings.HEALTH["THRESHOLDS"]["api.failed_calls_pct"]

    assert ai_matching_failed_calls_pct(demo_jobs, OVERLOAD_MINUTE) > critical


def test_the_overload_is_the_last_minute_of_every_twenty(settings):
    overloaded = [
        minute
        for minute in range(60)
        for second in (0, 59)
        if simulated_ai.failure_rate(datetime(2026, 12, 7, 16, minute, second, tzinfo=UTC).timestamp())
        == settings.DEMO_AI_OVERLOAD_FAILURE_RATE
    ]

    assert overloaded == [19, 19, 39, 39, 59, 59]


def test_the_demo_jobs_attempts_read_healthy(demo_jobs, settings):
    """Drill: with demo.fail three jobs in ten, 36-39 % of the demo's attempts failed: the Health
    page's job failure rate stayed "warning" for good."""
    warning, _ = settings.HEALTH["THRESHOLDS"]["jobs.failure_rate_pct"]
    rate = simulated_ai.failure_rate(ORDINARY_MINUTE.timestamp())

    assert failed_pct(demo_jobs, rate) < warning * 0.75


def test_the_demo_still_fails_jobs_for_good_to_alert_on(demo_jobs):
    """Lively: a few demo jobs in a hundred fail for good (an alert), more attempts are retried."""
    rate = simulated_ai.failure_rate(ORDINARY_MINUTE.timestamp())
    max_attempts = get_job_executor("demo.fail").retry_manager.max_attempts
    failed_for_good = [
        parameters
        for job_type, parameters in demo_jobs
        if job_type == "demo.fail"
        and parameters["fail_times"] >= (max_attempts if parameters["error_class"] in RETRYABLE_ERROR_TYPES else 1)
    ]

    assert len(failed_for_good) / len(demo_jobs) > 0.03
    assert failed_pct(demo_jobs, rate) > 5
