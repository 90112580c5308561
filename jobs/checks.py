"""`manage.py check` (and every management command) refuses a JOBS_TYPES that cannot work.

A drill: `JOBS_TYPES='[1]'` passed every check, then each submit failed on `'list' object has no
attribute 'get'`; `{"demo.sleep": {"timeout": "soon"}}` recorded the job and failed its enqueue, so
it sat queued until the lost-task sweep; a misspelt `max_attempt` was ignored without a word.
"""

from django.conf import settings
from django.core.checks import Error, register

# Each override a job type may have, and the least value it takes.
OVERRIDES = {"max_attempts": 1, "base_delay": 0, "max_delay": 0, "timeout": 1}
EXAMPLE = '{"ai_matching": {"max_attempts": 5, "timeout": 120}}'


@register()
def job_type_settings(app_configs, **kwargs):
    types = settings.JOBS["TYPES"]
    if not isinstance(types, dict) or not all(isinstance(overrides, dict) for overrides in types.values()):
        return [Error(f"JOBS_TYPES must be a JSON object of objects, e.g. {EXAMPLE}", id="jobs.E001")]
    errors = []
    for job_type, overrides in types.items():
        for key, value in overrides.items():
            if key not in OVERRIDES:
                known = ", ".join(OVERRIDES)
                errors.append(
                    Error(f"JOBS_TYPES[{job_type!r}]: unknown setting {key!r}; known: {known}", id="jobs.E001")
                )
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < OVERRIDES[key]:
                least = OVERRIDES[key]
                errors.append(
                    Error(
                        f"JOBS_TYPES[{job_type!r}][{key!r}] must be a number of at least {least}, not {value!r}",
                        id="jobs.E001",
                    )
                )
    return errors
