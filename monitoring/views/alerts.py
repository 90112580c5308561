"""Alerts: the open ones and their history, one alert in full, and Acknowledge and Resolve for
operators allowed to."""

from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from alerts.channels import display_recipient
from alerts.models import SEVERITY_RANK, AlertHistory, AlertType, DeliveryStatus, Severity
from alerts.selectors import acknowledged_open_alerts, alert_list, open_alert_counts
from alerts.services import MAX_REASON_CHARS, AlertKeptChanging, alert_acknowledge, alert_act, alert_resolve
from jobs import clock
from monitoring import selectors
from monitoring.forms import (
    FINISHED_WINDOWS,
    LONGEST_TIMEFRAME,
    LONGEST_WINDOW,
    MAX_ALERT_PAGES,
    AlertFilterForm,
    metrics_window,
    window_since,
)
from monitoring.permissions import RESOLVE_ALERTS, VIEW_ALERTS, VIEW_HEALTH, VIEW_JOBS, VIEW_METRICS
from monitoring.views.base import ListPage, dashboard_view, render_page
from monitoring.views.jobs import MAX_BULK_RETRY

SEVERITIES = sorted(Severity.values, key=lambda s: -SEVERITY_RANK[s])  # the most severe first


def _page(filters: dict) -> ListPage:
    alerts = alert_list(
        include_resolved=filters["include_resolved"],
        severity=filters["severity"] or None,
        alert_type=filters["alert_type"] or None,
        unacknowledged_at=clock.now() if filters["unacknowledged"] else None,
    )
    # Open alerts are a small set (partial index); the whole history is not counted.
    return (
        ListPage.peeked(alerts, filters["page"], max_pages=MAX_ALERT_PAGES)
        if filters["include_resolved"]
        else ListPage.counted(alerts, filters["page"], max_pages=MAX_ALERT_PAGES)
    )


def _list_counts(filters: dict) -> dict:
    """What the list's counts (alert_list_counts.html) show for these filters."""
    open_counts = open_alert_counts()
    open_total = sum(open_counts.values())
    return {
        "page": _page(filters),
        "open_counts": open_counts,
        "open_total": open_total,
        "acknowledged": acknowledged_open_alerts(clock.now()) if open_total else 0,
        "include_resolved": filters["include_resolved"],
        "unacknowledged": filters["unacknowledged"],
        # Only that filter: its empty list means everyone is on something, said as such.
        "unacknowledged_only": filters["unacknowledged"] and not (filters["severity"] or filters["alert_type"]),
        "filtered": bool(filters["severity"] or filters["alert_type"] or filters["unacknowledged"]),
        "severities": SEVERITIES,
    }


def _counts_of_the_list_resolved_from(request) -> dict | None:
    """The counts of the list the Resolve was clicked in (its URL is the form's `next`), to swap
    in with the row: they would otherwise lag it until the next poll."""
    try:
        query = urlsplit(request.POST.get("next", "")).query
    except ValueError:  # not a URL at all ("http://["): no list to count
        return None
    form = AlertFilterForm(QueryDict(query))
    return _list_counts(form.cleaned_data) if form.is_valid() else None


@dashboard_view(VIEW_ALERTS)
def alerts(request):
    form = AlertFilterForm(request.GET)
    context = {
        "now": clock.now(),
        "form": form,
        "severities": SEVERITIES,
        "alert_types": AlertType.values,
        "can_resolve": request.user.has_perm(RESOLVE_ALERTS),
        "page": None,
    }
    status = 200
    if form.is_valid():
        filters = form.cleaned_data
        context.update(_list_counts(filters))
        if filters["alert_type"] and filters["alert_type"] not in context["alert_types"]:
            context["alert_types"] = [*context["alert_types"], filters["alert_type"]]
    else:
        status = 400
    return render_page(
        request,
        "dashboard/alerts.html",
        context,
        partials={"alert-list": "dashboard/partials/alert_list.html"},
        status=status,
    )


def _shown():
    return alert_list(include_resolved=True).select_related("state")


def _alert(alert_id) -> AlertHistory | None:
    return _shown().filter(id=alert_id).first()


def failed_jobs_window(request, alert: AlertHistory, state, now) -> str | None:
    """For a job failure alert, the finished-jobs window from which to list the jobs that failed
    with its latest error (the fingerprint the rule saw), where they are retried together once the
    cause is fixed: the shortest reaching back to when the alert was raised, or the longest. None
    when there is no such list to show: another alert type, no fingerprint, no access to jobs, or
    a latest failure older than the longest window."""
    fingerprint = (state.details or {}).get("fingerprint") if state and isinstance(state.details, dict) else None
    if alert.alert_type != AlertType.JOB_FAILURE or not fingerprint or not request.user.has_perm(VIEW_JOBS):
        return None
    if window_since(now - state.last_seen_at) is None:
        return None
    return window_since(now - alert.triggered_at) or LONGEST_WINDOW


def failed_jobs_now(state, window: str | None, now) -> int:
    """How many jobs of failed_jobs_window's list are failed still, up to what one click retries:
    retried or completed since, they are listed no more, and the page says so rather than link an
    empty list."""
    if not window:
        return 0
    since = now - FINISHED_WINDOWS[window]
    return selectors.failed_jobs_count(since=since, error=state.details["fingerprint"], cap=MAX_BULK_RETRY)


def error_group_url(request, alert: AlertHistory, state, now) -> str:
    """For a job failure alert, its latest error's group on the Errors page (how often, since when,
    in which job types), over the timeframe back to when the alert was raised, or the longest, as
    failed_jobs_window chooses. Empty for another alert type, no fingerprint, no access to the
    Errors page, or a latest failure older than the longest timeframe."""
    fingerprint = (state.details or {}).get("fingerprint") if state and isinstance(state.details, dict) else None
    if alert.alert_type != AlertType.JOB_FAILURE or not fingerprint or not request.user.has_perm(VIEW_METRICS):
        return ""
    if metrics_window(now - state.last_seen_at) is None:
        return ""
    timeframe = metrics_window(now - alert.triggered_at) or LONGEST_TIMEFRAME
    return f"{reverse('dashboard:errors')}?{urlencode({'timeframe': timeframe, 'error': fingerprint})}"


UNSETTLED_DELIVERIES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


def where_it_shows(request, alert: AlertHistory, state) -> str:
    """The page that shows what an alert about no job is about, for a reader who may open it:
    the health page for a health check or a resource, a job type's performance for its speed.
    Empty when there is none. A drill reached such an alert from its notification and had no way
    on to what it was about."""
    if alert.alert_type in (AlertType.SYSTEM_HEALTH, AlertType.RESOURCE_UTILIZATION):
        return reverse("dashboard:health") if request.user.has_perm(VIEW_HEALTH) else ""
    job_type = state.job_type if state else ""
    if alert.alert_type == AlertType.PERFORMANCE_DEGRADATION and job_type and request.user.has_perm(VIEW_METRICS):
        return f"{reverse('dashboard:performance')}?{urlencode({'job_type': job_type})}"
    return ""


def _detail_context(request, alert: AlertHistory) -> dict:
    state = getattr(alert, "state", None)
    now = clock.now()
    deliveries = selectors.alert_deliveries(alert.id)
    window = failed_jobs_window(request, alert, state, now)
    return {
        "now": now,
        "alert": alert,
        # A resolved alert changes no more, but its notifications do: the resolve's own notice
        # read "pending, being sent" for good once its page stopped polling.
        "poll": not alert.resolved_at or any(d.status in UNSETTLED_DELIVERIES for d in deliveries),
        "state": state,
        "details": state.details if state and state.details else None,
        "failed_jobs_window": window,
        "failed_jobs_now": failed_jobs_now(state, window, now),
        "max_bulk_retry": MAX_BULK_RETRY,
        "error_group_url": error_group_url(request, alert, state, now),
        "where_it_shows": where_it_shows(request, alert, state),
        "recipients": [display_recipient(r) for r in alert.recipients or []],
        "deliveries": deliveries,
        "max_deliveries": selectors.MAX_ALERT_DELIVERIES,
        "jobs": selectors.alert_jobs(alert.id),
        "can_resolve": request.user.has_perm(RESOLVE_ALERTS),
    }


def _not_found(request, alert_id):
    return render(request, "dashboard/alert_not_found.html", {"alert_id": alert_id}, status=404)


@dashboard_view(VIEW_ALERTS)
def alert_detail(request, alert_id):
    alert = _alert(alert_id)
    if alert is None:
        return _not_found(request, alert_id)
    return render_page(
        request,
        "dashboard/alert_detail.html",
        _detail_context(request, alert),
        partials={"alert-live": "dashboard/partials/alert_live.html"},
    )


# A flapping alert found resolved, then open again when read back, each time it was tried.
KEPT_CHANGING = "This alert kept changing state (resolved, then reopened by its condition): try again."


@require_POST
@dashboard_view(RESOLVE_ALERTS)
def resolve_alert(request, alert_id):
    """Resolve through alerts.services.alert_resolve; the outcome replaces the row or the alert's
    page section that asked (HX-Target), or, without htmx, shows on the page the form came from."""
    alert = _alert(alert_id)
    if alert is None:
        return _not_found(request, alert_id)
    reason = request.POST.get("reason", "").strip()
    if len(reason) > MAX_REASON_CHARS:
        return _respond(request, alert, f"reason: at most {MAX_REASON_CHARS} characters", status=400)
    # As the API and admin do: where it was resolved, when no reason is typed.
    reason = reason or "resolved on the dashboard"
    try:
        resolved, alert = alert_act(alert_resolve, alert=alert, shown=_shown(), user=request.user, reason=reason)
    except AlertKeptChanging as e:
        return _respond(request, e.alert, KEPT_CHANGING, status=409)
    if alert is None:
        return _not_found(request, alert_id)
    if not resolved:
        who = f" by {alert.resolved_by}" if alert.resolved_by else ""
        return _respond(request, alert, f"This alert was already resolved{who}.", status=409)
    if not request.htmx:
        messages.success(request, f"Resolved: {alert.title}")
        return _back(request, alert_id)
    return _respond(request, alert, "Resolved.", status=200)


@require_POST
@dashboard_view(RESOLVE_ALERTS)
def acknowledge_alert(request, alert_id):
    """Acknowledge through alerts.services.alert_acknowledge; answered as a Resolve is."""
    alert = _alert(alert_id)
    if alert is None:
        return _not_found(request, alert_id)
    try:
        acknowledged, alert = alert_act(alert_acknowledge, alert=alert, shown=_shown(), user=request.user)
    except AlertKeptChanging as e:
        return _respond(request, e.alert, KEPT_CHANGING, status=409)
    if alert is None:
        return _not_found(request, alert_id)
    if not acknowledged:
        who = f" by {alert.resolved_by}" if alert.resolved_by else ""
        return _respond(request, alert, f"This alert was resolved{who}: nothing to acknowledge.", status=409)
    until = timezone.localtime(alert.acknowledged_until)
    notice = f"Acknowledged until {until:%H:%M %Z}: no escalation or repeat notification until then."
    if not request.htmx:
        messages.success(request, f"{alert.title}: {notice}")
        return _back(request, alert_id)
    return _respond(request, alert, notice, status=200)


def _back(request, alert_id):
    """Without htmx, after a POST a GET (reload-safe): of the list the form was in, or the alert's page."""
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("dashboard:alert_detail", alert_id=alert_id)


def _respond(request, alert: AlertHistory, notice: str, *, status: int):
    level = "success" if status == 200 else "error"
    if request.htmx and request.htmx.target == f"alert-{alert.id}":
        context = {"now": clock.now(), "alert": alert, "can_resolve": True, "notice": notice, "notice_level": level}
        # The row's forms post from the list it is in, not from this action's URL.
        context["list_url"] = request.POST.get("next", "")
        counts = _counts_of_the_list_resolved_from(request)
        if counts:
            context |= counts | {"with_list_counts": True}
        return render_page(request, "dashboard/partials/alert_row.html", context, status=status)
    context = _detail_context(request, alert) | {"notice": notice, "notice_level": level}
    template = "dashboard/partials/alert_live.html" if request.htmx else "dashboard/alert_detail.html"
    return render_page(request, template, context, status=status)
