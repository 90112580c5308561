"""System health: each component's latest check, its recent history, and the overall status."""

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from jobs import clock
from monitoring import charts, selectors
from monitoring.forms import LONGEST_TIMEFRAME, metrics_window
from monitoring.health import component_key, current_health, health_histories
from monitoring.models import MetricType
from monitoring.permissions import VIEW_HEALTH, VIEW_METRICS
from monitoring.views.base import dashboard_view, render_page

HISTORY_WINDOW = timedelta(hours=1)
STATUS_RANK = {"healthy": 0, "warning": 1, "critical": 2}
HISTORY_POINTS = 120  # per component, two a minute at most: enough for a sparkline
SECTIONS = {
    MetricType.DATABASE: "Database",
    MetricType.API: "External services",
    MetricType.RESOURCE: "Host resources",
    MetricType.JOB_QUEUE: "Job queue and workers",
}


def component_unit(metric_type: str, metric_name: str) -> charts.Unit:
    """What a component's value is measured in, from its name (docs/health-and-metrics.md)."""
    if metric_type == MetricType.API or metric_name.endswith("_ms"):
        return charts.MS
    if metric_name.endswith("_pct") or metric_name.endswith(".percent"):
        return charts.PERCENT
    if metric_name.endswith("_s"):
        return charts.SECONDS
    return charts.COUNT


def failed_calls_links(details: dict) -> list[dict]:
    """For a service whose calls from jobs failed lately (monitoring.health, `failed_calls`): each
    calling job type's failures on the Errors page, over the shortest timeframe covering the check's
    window. From there its error groups lead to the failed jobs, to retry once the service is back."""
    if not details.get("failed_calls"):
        return []
    window = timedelta(minutes=details.get("window_minutes") or 0)
    timeframe = metrics_window(window) or LONGEST_TIMEFRAME
    return [
        {
            "job_type": job_type,
            "url": f"{reverse('dashboard:errors')}?{urlencode({'timeframe': timeframe, 'job_type': job_type})}",
        }
        for job_type in details.get("job_types") or []
    ]


def _component(row: dict, history: list) -> dict:
    unit = component_unit(row["metric_type"], row["metric_name"])
    points = [(h.timestamp, float(h.metric_value), h.status) for h in history]
    values = [value for _, value, _ in points]
    details = row["details"] if isinstance(row["details"], dict) else {}
    label = f"{row['metric_name']} on {row['host']}" if row["host"] else row["metric_name"]
    return {
        **row,
        "value": unit.format(row["metric_value"]),
        "message": details.get("message", ""),
        "host": row["host"] or "",
        # An expected job type's (HEALTH_EXPECTED_JOBS): its runs, and the last that completed.
        "expected_job_type": details.get("job_type", "") if "every_minutes" in details else "",
        "last_job_id": details.get("last_job_id", ""),
        "failed_calls_links": failed_calls_links(details),
        "sparkline": charts.sparkline(points, unit=unit, label=label),
        "not_healthy": sum(1 for _, _, status in points if status != "healthy"),
        "checks": len(points),
        "low": unit.format(min(values)) if values else None,
        "high": unit.format(max(values)) if values else None,
    }


@dashboard_view(VIEW_HEALTH)
def health(request):
    now = clock.now()
    health = current_health(now)
    # Every component's last hour at once.
    histories = health_histories(since=now - HISTORY_WINDOW, limit=HISTORY_POINTS) if health["components"] else {}
    components = [
        _component(row, histories.get(component_key(row["metric_type"], row["metric_name"], row["details"]), []))
        for row in health["components"]
    ]
    # The worst first within each section (then by name and host), as run_health_checks prints them.
    components.sort(key=lambda c: (-STATUS_RANK.get(c["status"], 3), c["metric_name"], c["host"]))
    sections = [
        {"title": title, "components": [c for c in components if c["metric_type"] == metric_type]}
        for metric_type, title in SECTIONS.items()
    ]
    sections += [
        {"title": metric_type, "components": [c for c in components if c["metric_type"] == metric_type]}
        for metric_type in sorted({c["metric_type"] for c in components} - set(SECTIONS))
    ]
    interval = int(settings.PERIODIC_TASKS["run_health_checks"]["minutes"])
    context = {
        "now": now,
        "health": health,
        "sections": [section for section in sections if section["components"]],
        "interval_minutes": interval,
        "stale": health["stale"],
        "can_see_errors": request.user.has_perm(VIEW_METRICS),
        "worker_hosts": selectors.worker_hosts(now),
        "worker_window_minutes": int(selectors.WORKER_WINDOW.total_seconds() // 60),
    }
    return render_page(
        request, "dashboard/health.html", context, partials={"health-live": "dashboard/partials/health_live.html"}
    )
