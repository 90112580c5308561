"""`manage.py check` (and every management command) refuses jobs settings that cannot work.

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


# The timings of settings.JOBS that a loop waits on: 0 (or less) would spin it, writing to the
# database without a pause (a heartbeat thread per running job, each node's dispatch-and-sweep thread)
# or take every running job back from its live worker at each sweep.
TIMINGS = {
    "HEARTBEAT_INTERVAL": "JOBS_HEARTBEAT_INTERVAL",
    "STALE_AFTER": "JOBS_STALE_AFTER",
    "DISPATCH_INTERVAL": "JOBS_DISPATCH_INTERVAL",
    "SWEEP_INTERVAL": "JOBS_SWEEP_INTERVAL",
    "REQUEUE_AFTER": "JOBS_REQUEUE_AFTER",
    "DEFAULT_TIMEOUT": "JOBS_DEFAULT_TIMEOUT",
}


@register()
def job_timing_settings(app_configs, **kwargs):
    jobs = settings.JOBS
    errors = [
        Error(f"{variable} must be above 0, not {jobs[key]:g}", id="jobs.E002")
        for key, variable in TIMINGS.items()
        if jobs[key] <= 0
    ]
    if 0 < jobs["STALE_AFTER"] <= jobs["HEARTBEAT_INTERVAL"]:
        errors.append(
            Error(
                f"JOBS_STALE_AFTER ({jobs['STALE_AFTER']:g} s) must be longer than JOBS_HEARTBEAT_INTERVAL "
                f"({jobs['HEARTBEAT_INTERVAL']:g} s), several heartbeats long: live jobs would be taken back",
                id="jobs.E002",
            )
        )
    retry = jobs["RETRY"]
    if retry["max_attempts"] < 1:
        errors.append(Error(f"JOBS_RETRY_MAX_ATTEMPTS must be at least 1, not {retry['max_attempts']}", id="jobs.E002"))
    for key in ("base_delay", "max_delay"):
        if retry[key] < 0:
            errors.append(Error(f"JOBS_RETRY_{key.upper()} must be 0 or more, not {retry[key]:g}", id="jobs.E002"))
    return errors
