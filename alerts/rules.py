"""The alert rules: their defaults, settings overrides, and the decisions they make.

Rules live in settings (ALERTS["RULES"], from the ALERTS_RULES environment variable), not
in the database: they are a handful of knobs that change with a deploy, are reviewed like
code and are the same on every process at once (docs/alerts.md says more).
"""

import copy
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import ngettext

from alerts.models import AlertType, Severity
from monitoring.health import CLUSTER_WORKERS
from monitoring.models import HealthStatus, MetricType

DEFAULT_RULES = {
    AlertType.JOB_FAILURE: {
        "enabled": True,
        "severity": Severity.ERROR,
        # e.g. {"configuration": "critical"}: a missing API key needs a human now.
        "severity_by_error_class": {},
        # Job types that never alert (their failures are expected or handled elsewhere).
        "ignore_job_types": [],
        # Minutes before an open alert that keeps occurring notifies again; None: ALERTS_REPEAT_AFTER_MINUTES.
        "repeat_after_minutes": None,
    },
    AlertType.PERFORMANCE_DEGRADATION: {
        "enabled": True,
        "severity": Severity.WARNING,
        # p95 of the last `window_minutes` against the p95 of the `baseline_hours` before.
        "window_minutes": 60,
        "baseline_hours": 24,
        "ratio": 2.0,  # fires when recent p95 >= ratio * baseline p95 ...
        "min_increase_ms": 1000,  # ... and is at least this much slower (2 ms -> 5 ms is noise)
        "min_samples": 5,  # completed runs in the window
        "min_baseline_samples": 20,  # completed runs in the baseline
        "repeat_after_minutes": None,
    },
    AlertType.SYSTEM_HEALTH: {
        "enabled": True,
        # A check's status to the alert's severity (a status not listed never alerts).
        "severity_by_status": {HealthStatus.WARNING: Severity.WARNING, HealthStatus.CRITICAL: Severity.CRITICAL},
        # Checks ("job_queue/cluster.workers") whose warning alerts only when their reading before was
        # not healthy either: a node restarting in a rolling deploy is short of its workers for
        # seconds, and is back by the next check. Critical alerts at once.
        "warn_on_second_reading": [f"{MetricType.JOB_QUEUE.value}/{CLUSTER_WORKERS}"],
        "repeat_after_minutes": None,
    },
    AlertType.RESOURCE_UTILIZATION: {
        "enabled": True,
        # CPU, memory and disk checks grade themselves against HEALTH_*_PCT_WARNING/CRITICAL:
        # one set of thresholds, kept where the checks are.
        "severity_by_status": {HealthStatus.WARNING: Severity.WARNING, HealthStatus.CRITICAL: Severity.CRITICAL},
        "repeat_after_minutes": None,
    },
}


class RuleConfigError(ValueError):
    pass


def rule_config(alert_type: str) -> dict:
    """A rule's defaults with the settings' overrides on top (nested dicts merged one level)."""
    if alert_type not in DEFAULT_RULES:
        raise RuleConfigError(f"unknown alert type {alert_type!r}; known: {', '.join(DEFAULT_RULES)}")
    config = copy.deepcopy(DEFAULT_RULES[alert_type])
    for key, value in settings.ALERTS["RULES"].get(alert_type, {}).items():
        if isinstance(config.get(key), dict) and isinstance(value, dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


# What the items of a list setting are, for its error message.
LIST_ITEMS = {"ignore_job_types": "job types", "warn_on_second_reading": 'checks ("job_queue/cluster.workers")'}


def _wrong_type(key: str, default, value) -> str | None:
    """What `value` should have been, as the default's kind of value; None when it is one. A drill:
    `"enabled": "false"` left the rule on, `"ignore_job_types": "demo.fail"` ignored every type
    whose name is part of that string, a `"ratio": "3"` failed every performance check."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, dict):
        return None if isinstance(value, dict) else "an object"
    if isinstance(default, list):
        return (
            None
            if isinstance(value, list) and all(isinstance(v, str) for v in value)
            else f"a list of {LIST_ITEMS[key]}"
        )
    if isinstance(default, str):
        return None if isinstance(value, str) else "a severity"
    # A number, or repeat_after_minutes' None (ALERTS_REPEAT_AFTER_MINUTES).
    if value is None and default is None:
        return None
    return (
        None if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else "a number, 0 or more"
    )


def validate_rules() -> list[str]:
    """What is wrong with ALERTS["RULES"], one message each (a system check reports them)."""
    problems = []
    overrides = settings.ALERTS["RULES"]
    if not isinstance(overrides, dict):
        return ["ALERTS_RULES must be a JSON object of rule name to settings"]
    severities = Severity.values
    for alert_type, values in overrides.items():
        if alert_type not in DEFAULT_RULES:
            problems.append(f"ALERTS_RULES: unknown rule {alert_type!r}; known: {', '.join(DEFAULT_RULES)}")
            continue
        if not isinstance(values, dict):
            problems.append(f"ALERTS_RULES.{alert_type} must be an object")
            continue
        wrong = []
        for key, value in values.items():
            if key not in DEFAULT_RULES[alert_type]:
                problems.append(f"ALERTS_RULES.{alert_type}: unknown setting {key!r}")
            elif (expected := _wrong_type(key, DEFAULT_RULES[alert_type][key], value)) is not None:
                wrong.append(key)
                problems.append(f"ALERTS_RULES.{alert_type}.{key} must be {expected}, not {value!r}")
        if wrong:
            continue  # the severities below are read from the same values
        config = rule_config(alert_type)
        named = [config.get("severity")]
        named += list(config.get("severity_by_error_class", {}).values())
        named += list(config.get("severity_by_status", {}).values())
        for severity in named:
            if severity is not None and severity not in severities:
                problems.append(f"ALERTS_RULES.{alert_type}: {severity!r} is not a severity ({', '.join(severities)})")
    return problems


def repeat_after_minutes(alert_type: str) -> int:
    configured = rule_config(alert_type).get("repeat_after_minutes") if alert_type in DEFAULT_RULES else None
    return int(settings.ALERTS["REPEAT_AFTER_MINUTES"] if configured is None else configured)


# --- the rules' decisions ---------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A rule's reading of one event: alert (with a severity) or all clear."""

    alert_type: str
    severity: str | None  # None: the condition is clear
    data: dict


def job_failure_verdict(job) -> Verdict | None:
    """A job that failed for good (retries exhausted or not retryable). None: not the rule's business."""
    config = rule_config(AlertType.JOB_FAILURE)
    if not config["enabled"] or job.status != "failed" or job.job_type in config["ignore_job_types"]:
        return None
    last_error = job.last_error or {}
    error_class = job.error_class or last_error.get("error_class", "")
    severity = config["severity_by_error_class"].get(error_class, config["severity"])
    error_type = last_error.get("type", "")
    error_message = (last_error.get("message") or job.message or "").strip().splitlines()
    error = f"{error_type}: {error_message[0] if error_message else ''}".strip(": ")
    if error_class:
        error = f"{error} ({error_class})"
    return Verdict(
        AlertType.JOB_FAILURE,
        severity,
        {
            "title": f"{job.job_type} job failed",
            "message": (
                f"Job {job.id} ({job.job_type}) failed after {job.attempts} of {job.max_attempts} attempts. "
                f"{last_error.get('hint', '')}"
            ).strip(),
            "job_id": job.id,
            "job_type": job.job_type,
            # One open alert per job type and error class: a configuration error after a night
            # of timeouts is a new incident (and a new notification), not a count in the old one.
            "fingerprint": f"{job.job_type}/{error_class}" if error_class else job.job_type,
            "error": error,
            "details": {
                "error_class": error_class,
                "attempts": job.attempts,
                "fingerprint": last_error.get("fingerprint"),
            },
        },
    )


def health_verdict(metric, previous_status: str | None = None) -> Verdict | None:
    """A stored health check result. None when its rule is off."""
    is_resource = metric.metric_type == MetricType.RESOURCE
    alert_type = AlertType.RESOURCE_UTILIZATION if is_resource else AlertType.SYSTEM_HEALTH
    config = rule_config(alert_type)
    if not config["enabled"]:
        return None
    severity = config["severity_by_status"].get(metric.status)
    label = f"{metric.metric_type}/{metric.metric_name}"
    unconfirmed = previous_status in (None, HealthStatus.HEALTHY)
    if metric.status == HealthStatus.WARNING and label in config.get("warn_on_second_reading", []) and unconfirmed:
        return None  # neither raised nor cleared: the next reading says
    reading = f"{label} = {float(metric.metric_value):g} ({metric.status})"
    kind = "Resource utilization" if alert_type == AlertType.RESOURCE_UTILIZATION else "Health check"
    details = metric.details if isinstance(metric.details, dict) else {}
    summary = details.get("message") or details.get("error") or ""
    if summary and not summary.endswith((".", "!", "?")):
        summary += "."  # "Previously warning." follows it
    data = {
        "title": f"{kind} {label} is {metric.status}" if severity else f"{kind} {label} is back to healthy",
        "message": f"{reading}. {summary}".strip() + (f" Previously {previous_status}." if previous_status else ""),
        "check": label,
        "error": reading,
        "details": {
            "metric_value": float(metric.metric_value),
            "status": metric.status,
            "check_id": str(metric.id),
        },
    }
    host = details.get("host") if is_resource else None
    if host:
        # A resource reading is one host's (whichever node ran the check): one alert per host,
        # and only a reading of the same host clears it; another node's healthy disk says
        # nothing about this one's.
        data["fingerprint"] = f"{label}@{host}"
        data["details"]["host"] = host
        data["title"] = data["title"].replace(label, f"{label} on {host}", 1)
    return Verdict(alert_type, severity, data)


def performance_verdicts(recent: dict, baseline: dict) -> list[Verdict]:
    """One verdict per job type with enough runs in both windows (None severity: back to normal)."""
    config = rule_config(AlertType.PERFORMANCE_DEGRADATION)
    verdicts = []
    for job_type, now in sorted(recent.items()):
        before = baseline.get(job_type)
        if not before or now["count"] < config["min_samples"] or before["count"] < config["min_baseline_samples"]:
            continue
        p95, base = now["p95_ms"], before["p95_ms"]
        ratio = p95 / base if base else float("inf")
        degraded = ratio >= config["ratio"] and p95 - base >= config["min_increase_ms"]
        reading = (
            f"p95 {p95 / 1000:.2f}s over the last {config['window_minutes']} min ({now['count']} runs), "
            f"{ratio:.1f}x its {config['baseline_hours']}h baseline of {base / 1000:.2f}s ({before['count']} runs)"
        )
        verdicts.append(
            Verdict(
                AlertType.PERFORMANCE_DEGRADATION,
                config["severity"] if degraded else None,
                {
                    "title": f"{job_type} jobs are slower than usual"
                    if degraded
                    else f"{job_type} back to its usual speed",
                    "message": f"{job_type}: {reading}.",
                    "job_type": job_type,
                    "error": reading,
                    "details": {
                        "recent": now,
                        "baseline": before,
                        "ratio": round(ratio, 2),
                        "threshold": config["ratio"],
                    },
                },
            )
        )
    return verdicts


# The watchdog judges what the cluster.workers health check reads, whether a worker runs: both
# raise and resolve the one alert (the same check, so the same fingerprint), and an outage pages
# once whichever saw it first. A cluster.workers reading that found a worker (healthy, or a warning:
# fewer than expected) is a worker seen for the watchdog too (monitoring.health.worker_liveness),
# so the two never disagree for long.
NO_WORKER_CHECK = f"{MetricType.JOB_QUEUE.value}/{CLUSTER_WORKERS}"
NO_WORKER_CHECKS = (NO_WORKER_CHECK, "cluster.watchdog")  # and the watchdog's own check name before


def no_worker_verdict(liveness: dict, now) -> Verdict | None:
    """The cluster watchdog's reading of monitoring.health.worker_liveness(): critical while no
    django-q2 worker has been seen (nothing runs the checks, the jobs or the notifications then),
    clear once one is. None when the system_health rule is off."""
    if not rule_config(AlertType.SYSTEM_HEALTH)["enabled"]:
        return None
    last_seen, queued, oldest = liveness["last_seen_at"], liveness["queued"], liveness["oldest_queued_at"]
    data = {"check": NO_WORKER_CHECK, "details": dict(liveness)}
    if liveness["alive"]:
        return Verdict(
            AlertType.SYSTEM_HEALTH, None, {**data, "error": f"a worker was seen at {last_seen:%H:%M:%S} UTC"}
        )
    waiting = (
        ngettext("%(n)d job queued since %(at)s UTC", "%(n)d jobs queued, the oldest since %(at)s UTC", queued)
        % {"n": queued, "at": f"{oldest:%Y-%m-%d %H:%M}"}
        if queued
        else "no job queued"
    )
    if last_seen is None:
        silence, since = "No worker cluster has been seen", "No django-q2 worker has ever been seen"
    else:
        minutes = int((now - last_seen).total_seconds() // 60)
        silence = f"No worker cluster has run for {minutes} min"
        since = f"No django-q2 worker has been seen since {last_seen:%Y-%m-%d %H:%M:%S} UTC ({minutes} min)"
    cause, advice = _broker_diagnosis(liveness.get("broker"))
    headline = silence + (f" ({cause})" if cause else "")
    title = headline
    if queued:
        title += "; " + ngettext("%d job waiting", "%d jobs waiting", queued) % queued + f" since {oldest:%H:%M} UTC"
    message = (
        f"{since}: no job starts, no health check runs, the cluster sends no notification; {waiting}."
        f" {advice} (Raised by manage.py cluster_watchdog, which sends its notifications itself.)"
    )
    error = f"{headline}; {waiting}"
    return Verdict(
        AlertType.SYSTEM_HEALTH, Severity.CRITICAL, {**data, "title": title, "message": message, "error": error}
    )


def _broker_diagnosis(reading: dict | None) -> tuple[str, str]:
    """(the cause in a few words for the title, or ""; what to do) from
    monitoring.health.broker_reading(): the clusters may be stopped, cut off from their broker,
    or running but stuck."""
    start = "Start a cluster: python manage.py qcluster."
    if reading is None:
        return "", start
    broker = reading["broker"]
    if not reading["reachable"]:
        return "broker unreachable", (
            f"The broker ({broker}) does not answer: {reading['error']}. Clusters that run cannot take jobs"
            " or run the scheduled checks until it does: bring the broker back (or fix REDIS_URL)."
        )
    clusters = reading["clusters"]
    if not clusters:
        return "", f"No cluster is registered with the broker ({broker}). {start}"
    hosts = ", ".join(sorted({c["host"] for c in clusters}))
    workers = sum(c["workers"] for c in clusters)
    count = {
        "clusters": ngettext("%d cluster", "%d clusters", len(clusters)) % len(clusters),
        "workers": ngettext("%d worker", "%d workers", workers) % workers,
        "broker": broker,
        "hosts": hosts,
    }
    return f"{count['clusters']} registered but silent", (
        ngettext(
            "%(clusters)s with %(workers)s is registered with the broker (%(broker)s) on %(hosts)s, but it has"
            " not run a scheduled health check or sent a job heartbeat: it may be stuck, or its scheduler or"
            " database connection broken. Read its logs and restart it.",
            "%(clusters)s with %(workers)s are registered with the broker (%(broker)s) on %(hosts)s, but none"
            " has run a scheduled health check or sent a job heartbeat: they may be stuck, or their scheduler"
            " or database connection broken. Read their logs and restart them.",
            len(clusters),
        )
        % count
    )
