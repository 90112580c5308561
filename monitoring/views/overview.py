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
from monitoring.views.performance import REFRESH_SECONDS, span_name


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


# The overview's two polled parts (htmx targets): what runs now, every 5 s, and the chosen
# timeframe's figures, as often as the Performance page refreshes that timeframe (a month's
# figures hardly move, and cost the most). A poll of one computes only its own figures.
NOW_PART, WINDOW_PART = "overview-live", "overview-window"
PARTS = {NOW_PART: "dashboard/partials/overview_live.html", WINDOW_PART: "dashboard/partials/overview_window.html"}
NOW_SECONDS = 5


@dashboard_view(VIEW_JOBS)
def _overview(request):
    now = clock.now()
    form = TimeframeForm(request.GET, default_timeframe="1h")
    context = {"now": now, "form": form, "timeframes": list(TIMEFRAMES), "timeframe": "1h"}
    if not form.is_valid():
        return render_page(request, "dashboard/overview.html", context, status=400)
    timeframe = form.cleaned_data["timeframe"]
    user = request.user
    polled = request.htmx.target if request.htmx and request.htmx.target in PARTS else None
    refresh = REFRESH_SECONDS[timeframe]
    context.update(
        timeframe=timeframe,
        oob=polled is not None,  # a poll also sends its part's panel below, swapped in by id
        now_seconds=NOW_SECONDS,
        now_refresh=span_name(NOW_SECONDS),
        window_seconds=refresh,
        window_hidden_seconds=max(refresh, 30),
        window_refresh=span_name(refresh),
        can_view_metrics=user.has_perm(VIEW_METRICS),
    )
    if polled != WINDOW_PART:
        context.update(
            counts=selectors.active_job_counts(),
            paused=selectors.paused_job_types(),
            attention=selectors.needs_attention_count(now),
            # Figures from pages the user may not open are left out (and not queried).
            health=current_health(now) if user.has_perm(VIEW_HEALTH) else None,
            open_alerts=_open_alerts(now) if user.has_perm(VIEW_ALERTS) else None,
        )
    if polled != NOW_PART:
        failures, failures_total = selectors.recent_failures(since=now - TIMEFRAMES[timeframe])
        context.update(
            failures=failures,
            failures_total=failures_total,
            failures_window=finished_window(timeframe),
            outcomes=outcome_summary(timeframe, now=now),
        )
    return render_page(request, "dashboard/overview.html", context, partials=PARTS)
