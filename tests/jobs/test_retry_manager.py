import random

import pytest
from asgiref.sync import async_to_sync

from jobs.errors import ErrorType
from jobs.retry import RetryManager


def test_delay_is_the_designs_exponential_backoff_plus_10_to_30_percent_jitter():
    manager = RetryManager(base_delay=1.0, max_delay=300.0)
    for attempt, base in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0)]:
        rng = random.Random(attempt)
        expected_jitter = random.Random(attempt).uniform(0.1, 0.3) * base
        assert manager.calculate_delay(attempt, rng) == pytest.approx(base + expected_jitter)
        delays = [manager.calculate_delay(attempt) for _ in range(200)]
        assert base * 1.1 <= min(delays) and max(delays) <= base * 1.3


def test_delay_is_capped_at_max_delay_before_jitter():
    manager = RetryManager(base_delay=1.0, max_delay=300.0)
    delays = [manager.calculate_delay(20) for _ in range(100)]
    assert all(330.0 <= d <= 390.0 for d in delays)


def test_only_retryable_classes_are_retried_while_attempts_remain():
    manager = RetryManager(max_attempts=3)
    assert manager.should_retry_sync(ErrorType.TRANSIENT, attempt=1)
    assert manager.should_retry_sync(ErrorType.SYSTEM, attempt=2)
    assert not manager.should_retry_sync(ErrorType.TRANSIENT, attempt=3)
    assert not manager.should_retry_sync(ErrorType.CONFIGURATION, attempt=1)
    assert not manager.should_retry_sync(ErrorType.DATA, attempt=1)
    assert not manager.should_retry_sync(TimeoutError("x"), attempt=1, max_attempts=1)
    assert manager.should_retry_sync(TimeoutError("x"), attempt=1)


def test_should_retry_is_awaitable():
    assert async_to_sync(RetryManager().should_retry)(ConnectionResetError(), 1) is True


def test_settings_then_code_then_per_type_settings(settings):
    settings.JOBS = {
        **settings.JOBS,
        "RETRY": {"max_attempts": 3, "base_delay": 1.0, "max_delay": 300.0},
        "TYPES": {"reports": {"max_attempts": 7}},
    }
    assert RetryManager.from_settings("other") == RetryManager(3, 1.0, 300.0)
    assert RetryManager.from_settings("other", base_delay=5.0) == RetryManager(3, 5.0, 300.0)
    assert RetryManager.from_settings("reports", max_attempts=2, base_delay=5.0) == RetryManager(7, 5.0, 300.0)
