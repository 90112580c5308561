"""One job in full, live while it runs, with Cancel and Retry for operators allowed to act."""

import json
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_POST

from jobs import clock
from jobs.manager import JobNotFound, JobStateConflict, job_manager
from jobs.models import FINISHED_STATUSES, RETRYABLE_STATUSES, JobStatus
from jobs.registry import registered_job_types
from monitoring import selectors
from monitoring.forms import MAX_EVENT_PAGES, JobEventsForm, SubmitJobForm, metrics_window, window_since
from monitoring.permissions import CONTROL_JOBS, SUBMIT_JOBS, VIEW_ALERTS, VIEW_JOBS, VIEW_METRICS
from monitoring.retention import events_pruned
from monitoring.templatetags.dashboard import duration
from monitoring.timeline import attempt_clock, attempt_label, attempt_rows, timeline_rows
from monitoring.views.base import ListPage, dashboard_view, render_page

MAX_ATTEMPT_DIGITS = 10


def job_poll(job) -> dict | None:
    """How often the job page polls its live part (while the tab is visible, and hidden).

    An active job every 2 s. A failed or cancelled one can still be retried elsewhere (the API,
    the admin, another tab), so it keeps polling at the dashboard's slowest pace (the health
    page's); a completed job never changes again and stops."""
    if job.is_active:
        return {"seconds": 2, "hidden_seconds": 30}
    if job.status in RETRYABLE_STATUSES:
        return {"seconds": 15, "hidden_seconds": 60}
    return None


def copy_form(job) -> SubmitJobForm:
    """The run form filled with `job`'s type, parameters and attempts."""
    initial = {"job_type": job.job_type, "parameters": json.dumps(job.parameters), "max_attempts": job.max_attempts}
    return SubmitJobForm(initial={**initial, "copy_of": job.id})


def failed_with_it_url(job, error: dict | None, now) -> str:
    """The finished list of the jobs that failed for good with this failed job's error (this one
    included), where "Retry these failed jobs" queues them all again once the cause is fixed: the
    Errors page's "failed with it" link, from the job an operator reached first. Empty when there
    is no such list: a job not failed, an error without fingerprint, a job past the longest window."""
    fingerprint = (error or {}).get("fingerprint")
    if job.status != JobStatus.FAILED or not fingerprint or job.finished_at is None:
        return ""
    window = window_since(now - job.finished_at)
    if window is None:
        return ""
    query = urlencode({"view": "finished", "status": "failed", "window": window, "error": fingerprint})
    return f"{reverse('dashboard:jobs')}?{query}"


def error_history_url(request, job, error: dict | None, now) -> str:
    """This failed job's error group on the Errors page (how often, since when, in which job types,
    its alerts), over the shortest timeframe covering the failure, as failed_with_it_url chooses
    its window. Empty for a reader without the Errors page's permission, or when failed_with_it_url
    would be: a job not failed, an error without fingerprint, a failure past the longest timeframe."""
    fingerprint = (error or {}).get("fingerprint")
    if job.status != JobStatus.FAILED or not fingerprint or job.finished_at is None:
        return ""
    timeframe = metrics_window(now - job.finished_at)
    if timeframe is None or not request.user.has_perm(VIEW_METRICS):
        return ""
    return f"{reverse('dashboard:errors')}?{urlencode({'timeframe': timeframe, 'error': fingerprint})}"


def page_context(request, detail) -> dict:
    """What the job's page shows (its live part included), for `detail` (selectors.job_detail)."""
    job = detail.job
    error_event = detail.last_error_event
    now = clock.now()
    error = job.last_error if isinstance(job.last_error, dict) else None
    return {
        "now": now,
        "job": job,
        "detail": detail,
        "timeline": timeline_rows(detail.events),
        "attempts": attempt_rows(detail.attempts, detail.events),
        "attempt_label": attempt_label(job),
        "error": error,
        "failed_with_it_url": failed_with_it_url(job, error, now),
        "error_history_url": error_history_url(request, job, error, now),
        "traceback": (error_event.error_details or {}).get("traceback") if error_event else None,
        # Alerts have their own permission, as on their own pages (and the overview, the error page).
        "alerts": selectors.job_alerts(job.id) if request.user.has_perm(VIEW_ALERTS) else [],
        "can_control": request.user.has_perm(CONTROL_JOBS),
        "can_cancel": job.status not in FINISHED_STATUSES,
        "can_retry": job.status in RETRYABLE_STATUSES,
        "next_attempt": job.attempts + 1,
        "queue": selectors.queue_wait(job, now) if job.status == JobStatus.QUEUED else None,
        "retry_late": selectors.retry_late(job, now),
        "clock": attempt_clock(job, now),
        "poll": job_poll(job),
        # Run a copy: the same type and parameters, editable (a type no longer registered cannot run).
        # Lazy: the live part, polled every 2 s, does not show it (parameters may be 256 KiB).
        "can_submit": request.user.has_perm(SUBMIT_JOBS) and job.job_type in registered_job_types(),
        "submit_form": SimpleLazyObject(lambda: copy_form(job)),
        "retention_days": settings.RETENTION_DAYS.get("job_execution_logs", 0),
        "events_pruned": detail.events_pruned,
    }


def _not_found(request, job_id):
    return render(request, "dashboard/job_not_found.html", {"job_id": job_id}, status=404)


@dashboard_view(VIEW_JOBS)
def job_detail(request, job_id):
    detail = selectors.job_detail(job_id)
    if detail is None:
        return _not_found(request, job_id)
    return render_page(
        request,
        "dashboard/job_detail.html",
        page_context(request, detail),
        partials={"job-live": "dashboard/partials/job_live.html"},
    )


@dashboard_view(VIEW_JOBS)
def job_events(request, job_id):
    """The job's whole timeline, oldest first, a page at a time: its page shows the latest events only."""
    job = selectors.job_summary(job_id)
    if job is None:
        return _not_found(request, job_id)
    form = JobEventsForm(request.GET)
    context = {"job": job, "form": form, "retention_days": settings.RETENTION_DAYS.get("job_execution_logs", 0)}
    if not form.is_valid():
        return render_page(request, "dashboard/job_events.html", context, status=400)
    size = selectors.MAX_TIMELINE_EVENTS
    number = form.cleaned_data["page"] or 1
    found = selectors.job_events(job.id, offset=(number - 1) * size, limit=size)
    more = number * size < found.total
    page = ListPage.within(found.events, number, more=more, max_pages=MAX_EVENT_PAGES, total=found.total, per_page=size)
    timeline = timeline_rows(found.events, group_progress=False)
    pruned = not found.total and events_pruned(job)
    # Said where the first event left is shown: the timeline starts at a retry.
    earlier_pruned = number == 1 and bool(found.events) and selectors.job_earlier_events_pruned(job.id, found.events[0])
    context |= {"page": page, "timeline": timeline, "events_pruned": pruned, "earlier_events_pruned": earlier_pruned}
    return render_page(request, "dashboard/job_events.html", context)


def _act(request, job_id, action, outcome: Callable[[], str]):
    """Run an operator action; what it did (`outcome()`, read after it) or why it was refused is
    shown on the job's page."""
    try:
        action()
    except JobNotFound:
        return _not_found(request, job_id)
    except JobStateConflict as conflict:
        return _respond(request, job_id, str(conflict), status=409)
    done = outcome()
    if not request.htmx:
        messages.success(request, done)
        return redirect("dashboard:job_detail", job_id=job_id)  # after a POST, a GET (reload-safe)
    return _respond(request, job_id, done, status=200)


def _respond(request, job_id, notice: str, *, status: int):
    detail = selectors.job_detail(job_id)
    if detail is None:
        return _not_found(request, job_id)
    context = page_context(request, detail) | {
        "notice": notice,
        "notice_level": "success" if status == 200 else "error",
        # "Cancel requested: it stops…", "Retry queued": true until the job stops (dashboard.js).
        "notice_while_active": status == 200 and detail.job.is_active,
    }
    template = "dashboard/partials/job_live.html" if request.htmx else "dashboard/job_detail.html"
    return render_page(request, template, context, status=status)


@require_POST
@dashboard_view(CONTROL_JOBS)
def cancel_job(request, job_id):
    by = request.user.get_username()
    return _act(request, job_id, lambda: job_manager.cancel_job_sync(job_id, by=by), lambda: _cancel_outcome(job_id))


def _cancel_outcome(job_id) -> str:
    """cancel_job_sync answers True both for a job cancelled at once (queued or waiting to retry)
    and for a running one asked to stop: its status afterwards tells which."""
    job = selectors.job_summary(job_id)
    if job is not None and job.status == JobStatus.CANCELLED:
        return "Cancelled."
    # The heartbeat passes the request on within seconds, so a job that checks (ctx.sleep,
    # ctx.check_cancelled, a progress report) stops soon; a stuck one that never checks stops
    # at its timeout, and is not retried either way. Saying only "at its next progress report"
    # told the operator of a silent job that it might never stop.
    stopping = "Cancel requested: it stops at its next progress report or cancellation check"
    running = attempt_clock(job, clock.now()) if job is not None else None
    if running is not None and running.left > 0:
        stopping += f", at the latest at its timeout in {duration(running.left)}"
    return stopping + "; it is not retried."


@require_POST
@dashboard_view(CONTROL_JOBS)
def retry_job(request, job_id):
    by = request.user.get_username()
    attempt = request.POST.get("attempt", "")
    # "²".isdigit() too, but int() refuses it; so does int() past 4,300 digits (a 500, not a 400).
    if attempt and not (attempt.isascii() and attempt.isdigit() and len(attempt) <= MAX_ATTEMPT_DIGITS):
        message = f"attempt: must be a whole number of at most {MAX_ATTEMPT_DIGITS} digits (the next attempt's number)"
        return _respond(request, job_id, message, status=400)
    attempt = int(attempt) if attempt else None
    retry = lambda: job_manager.retry_job_sync(job_id, attempt, by=by)  # noqa: E731
    # Not "it waits, <type> is paused": that stayed above the job running once another operator
    # resumed the type. A pause shows live below ("Held: <type> is paused…") for as long as it holds.
    return _act(request, job_id, retry, lambda: "Retry queued: a new attempt will run.")
