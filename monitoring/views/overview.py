"""The overview: health, what runs now, how the chosen timeframe went, each figure a link to its page."""

from django.shortcuts import redirect

from alerts.models import SEVERITY_RANK
from alerts.selectors import acknowledged_open_alerts, open_alert_counts
from jobs import clock
from monitoring import selectors
from monitoring.forms import TimeframeForm, finished_window
from monitoring.health import current_health
from monitoring.metrics import TIMEFRAMES, outcome_summary
from monitoring.permissions import VIEW_ALERTS, VIEW_HEALTH, VIEW_JOBS, VIEW_METRICS
from monitoring.views.base import dashboard_view, render_page


def _open_alerts(now) -> dict:
    """{"total", "by_severity": [(severity, n), ...], "unacknowledged"}, the most severe first."""
    counts = open_alert_counts()
    ordered = sorted(counts.items(), key=lambda item: -SEVERITY_RANK.get(item[0], -1))
    total = sum(counts.values())
    acknowledged = acknowledged_open_alerts(now) if total else 0
    return {"total": total, "by_severity": ordered, "unacknowledged": total - acknowledged, **counts}


# The pages "/" leads to instead, in the navigation's order, for a user who may not see jobs: an
# on-call login allowed only alerts landed on a 403 right after logging in.
LANDING_PAGES = [
    (VIEW_METRICS, "dashboard:performance"),
    (VIEW_HEALTH, "dashboard:health"),
    (VIEW_ALERTS, "dashboard:alerts"),
]


def overview(request):
    user = request.user
    if user.is_authenticated and not user.has_perm(VIEW_JOBS) and not request.htmx:
        for permission, page in LANDING_PAGES:
            if user.has_perm(permission):
                return redirect(page)
    return _overview(request)  # or the login page, or the 403 naming jobs.view_job


@dashboard_view(VIEW_JOBS)
def _overview(request):
    now = clock.now()
    form = TimeframeForm(request.GET, default_timeframe="1h")
    context = {"now": now, "form": form, "timeframes": list(TIMEFRAMES), "timeframe": "1h"}
    if not form.is_valid():
        return render_page(request, "dashboard/overview.html", context, status=400)
    timeframe = form.cleaned_data["timeframe"]
    failures, failures_total = selectors.recent_failures(since=now - TIMEFRAMES[timeframe])
    user = request.user
    context.update(
        timeframe=timeframe,
        counts=selectors.active_job_counts(),
        paused=selectors.paused_job_types(),
        attention=selectors.needs_attention_count(now),
        failures=failures,
        failures_total=failures_total,
        failures_window=finished_window(timeframe),
        outcomes=outcome_summary(timeframe, now=now),
        # Figures from pages the user may not open are left out (and not queried).
        health=current_health(now) if user.has_perm(VIEW_HEALTH) else None,
        open_alerts=_open_alerts(now) if user.has_perm(VIEW_ALERTS) else None,
        can_view_metrics=user.has_perm(VIEW_METRICS),
    )
    return render_page(
        request, "dashboard/overview.html", context, partials={"overview-live": "dashboard/partials/overview_live.html"}
    )
