import random
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RetryManager:
    """The design's retry policy: exponential backoff with 10-30 % jitter.

    `attempt` counts the attempts made so far (1 once the first one failed), so with the
    defaults the waits are about 2 s before attempt 2 and 4 s before attempt 3.
    """

    max_attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0

    def calculate_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        # Exponential backoff with jitter
        delay = min(self.base_delay * (2**attempt), self.max_delay)
        jitter = (rng or random).uniform(0.1, 0.3) * delay
        return delay + jitter

    def should_retry_sync(self, error, attempt: int, max_attempts: int | None = None) -> bool:
        """`error` is the exception, or an ErrorType already classified."""
        if attempt >= (self.max_attempts if max_attempts is None else max_attempts):
            return False
        return self.is_retryable_error(error)

    async def should_retry(self, error, attempt: int, max_attempts: int | None = None) -> bool:
        return self.should_retry_sync(error, attempt, max_attempts)

    def is_retryable_error(self, error) -> bool:
        from jobs.errors import RETRYABLE_ERROR_TYPES, ErrorType, classify_error

        error_type = error if isinstance(error, ErrorType) else classify_error(error)
        return error_type in RETRYABLE_ERROR_TYPES

    @classmethod
    def from_settings(cls, job_type: str, **code_defaults) -> "RetryManager":
        """Global settings, then the executor's own defaults, then settings for the job type."""
        config = dict(settings.JOBS["RETRY"])
        config.update({key: value for key, value in code_defaults.items() if value is not None})
        overrides = settings.JOBS["TYPES"].get(job_type, {})
        config.update({key: overrides[key] for key in ("max_attempts", "base_delay", "max_delay") if key in overrides})
        return cls(
            max_attempts=int(config["max_attempts"]),
            base_delay=float(config["base_delay"]),
            max_delay=float(config["max_delay"]),
        )
