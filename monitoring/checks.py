"""`manage.py check` (and every management command) reports a wrong health or retention setting
at start."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured


@register()
def health_settings(app_configs, **kwargs):
    from monitoring.health import expected_jobs, external_services

    errors = []
    for read, error_id in ((external_services, "monitoring.E001"), (expected_jobs, "monitoring.E002")):
        try:
            read()
        except ImproperlyConfigured as e:
            errors.append(Error(str(e), id=error_id))
    return errors


MAX_RETENTION_DAYS = 36_500  # beyond any history kept; more overflows the cutoff's date
LONGEST_METRICS_DAYS = 30  # the metrics' longest timeframe (monitoring.metrics.TIMEFRAMES)


@register()
def retention_settings(app_configs, **kwargs):
    """A drill found -1 day read as "kept whole", 100,000,000 days an OverflowError at each prune,
    a batch size of 0 a traceback every hour, and 15 days half of every 30-day figure gone."""
    problems = []
    names = {
        "job_execution_logs": "RETENTION_JOB_EXECUTION_LOGS_DAYS",
        "system_health_metrics": "RETENTION_SYSTEM_HEALTH_METRICS_DAYS",
    }
    for table, days in settings.RETENTION_DAYS.items():
        if not 0 <= days <= MAX_RETENTION_DAYS:
            problems.append(
                Error(
                    f"{names.get(table, table)} must be from 0 (keep {table} whole) to {MAX_RETENTION_DAYS} days,"
                    f" not {days}",
                    id="monitoring.E003",
                )
            )
    if settings.RETENTION_BATCH_SIZE < 1:
        problems.append(
            Error(f"RETENTION_BATCH_SIZE must be at least 1, not {settings.RETENTION_BATCH_SIZE}", id="monitoring.E004")
        )
    days = settings.RETENTION_DAYS.get("job_execution_logs", 0)
    if 0 < days < LONGEST_METRICS_DAYS:
        problems.append(
            Warning(
                f"RETENTION_JOB_EXECUTION_LOGS_DAYS is {days}: the 30d metrics and error analysis would count only the "
                f"last {days} days of outcomes against 30 days of attempts started",
                hint=f"keep job_execution_logs at least {LONGEST_METRICS_DAYS} days (the default is 45)",
                id="monitoring.W001",
            )
        )
    return problems


@register()
def login_settings(app_configs, **kwargs):
    """A drill: LOGIN_FAILURES_ALLOWED=0, meant as "no limit" as 0 turns other settings off, refused
    every login, the first with the right password included; LOGIN_LOCKOUT_MINUTES=0 kept no count,
    so passwords could be guessed without end."""
    effects = {
        "FAILURES": ("LOGIN_FAILURES_ALLOWED", "every login would be refused, the right password included"),
        "PER_ADDRESS": ("LOGIN_FAILURES_PER_ADDRESS", "every login would be refused, the right password included"),
        "MINUTES": ("LOGIN_LOCKOUT_MINUTES", "no failure would be counted, and passwords guessed without end"),
    }
    return [
        Error(f"{name} must be at least 1, not {settings.LOGIN_THROTTLE[key]}: {effect}", id="monitoring.E005")
        for key, (name, effect) in effects.items()
        if settings.LOGIN_THROTTLE[key] < 1
    ]
