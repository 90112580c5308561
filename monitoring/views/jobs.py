"""Real-time job status: active jobs (or recently finished ones), filtered, paginated, live."""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_POST

from jobs import clock
from jobs.idempotency import IdempotencyKeyReused
from jobs.manager import job_manager
from jobs.models import ACTIVE_STATUSES, FINISHED_STATUSES, MAX_PAUSE_REASON_CHARS, JobStatus
from jobs.notices import resume_outcome
from jobs.registry import InvalidJobParameters, UnknownJobType, registered_job_types
from monitoring import selectors
from monitoring.forms import (
    FINISHED_WINDOWS,
    MAX_ACTIVE_PAGES,
    MAX_FINISHED_PAGES,
    RETRYABLE_FINISHED_STATUSES,
    BulkRetryForm,
    JobFilterForm,
    PauseForm,
    SubmitJobForm,
    list_view_of,
    until_param,
)
from monitoring.permissions import CONTROL_JOBS, SUBMIT_JOBS, VIEW_JOBS
from monitoring.timeline import attempt_clock
from monitoring.views.base import FILTER_ERRORS, PAGE_SIZE, ListPage, dashboard_view, render_page
from monitoring.views.job_detail import page_context


def _active_page(filters: dict, now) -> ListPage:
    jobs = selectors.active_job_list(
        job_type=filters["job_type"],
        status=filters["status"],
        job_id=filters["q"],
        attention_at=now if filters["attention"] else None,
    )
    return ListPage.counted(jobs, filters["page"], max_pages=MAX_ACTIVE_PAGES)


def finished_span(filters: dict, now) -> dict:
    """The finished list's `since` and `until`: the window before now, or before the moment the
    list is pinned at (`until`), so that a pinned list neither gains rows at its head nor loses
    them at its tail."""
    end = filters["until"] or now
    return {"since": end - FINISHED_WINDOWS[filters["window"]], "until": filters["until"]}


def _finished_page(filters: dict, now) -> ListPage:
    number = filters["page"] or 1
    rows, more = selectors.finished_jobs(
        **finished_span(filters, now),
        job_type=filters["job_type"],
        status=filters["status"],
        job_id=filters["q"],
        error=filters["error"],
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    return ListPage.within(rows, number, more=more, max_pages=MAX_FINISHED_PAGES)


@dashboard_view(VIEW_JOBS)
def job_list(request):
    return _list_page(request, request.GET)


def _list_page(
    request, params, *, notice: str = "", notice_level: str = "success", status: int = 200, submit_form=None
):
    """The list the query `params` ask for; `notice`: what an action on it did; `submit_form`: a
    refused "Run a job" form, shown again as it was sent."""
    now = clock.now()
    form = JobFilterForm(params, now=now)
    view = list_view_of(params)
    context = {
        "now": now,
        "form": form,
        "list_query": params,  # for the links and polls: a POST's own query string is empty
        "view": view,
        "job_types": registered_job_types(),
        "status_choices": FINISHED_STATUSES if view == "finished" else ACTIVE_STATUSES,
        "windows": list(FINISHED_WINDOWS),
        "page": None,
        "can_control": request.user.has_perm(CONTROL_JOBS),
        "retryable_statuses": RETRYABLE_FINISHED_STATUSES,
        "max_bulk_retry": MAX_BULK_RETRY,
        "notice": notice,
        "notice_level": notice_level,
        # Shown above the list, and swapped in by each poll of its rows (a pause made elsewhere).
        "paused": selectors.paused_job_types(),
        "max_pause_reason": MAX_PAUSE_REASON_CHARS,
        "can_submit": request.user.has_perm(SUBMIT_JOBS),
        "submit_form": submit_form or SubmitJobForm(),
    }
    paused_now = {pause.job_type for pause in context["paused"]}
    context["pausable_types"] = [name for name in context["job_types"] if name not in paused_now]
    if form.is_valid():
        filters = form.cleaned_data
        page = _finished_page(filters, now) if form.finished else _active_page(filters, now)
        context["page"] = page
        context["clocks"] = {job.id: attempt_clock(job, now) for job in page.object_list}
        context["filtered"] = any(filters[f] for f in ("job_type", "status", "q", "attention", "error"))
        if form.finished:
            # Page 1 is live; the pages past it keep the list as it was when the reader left page 1
            # (its latest poll), or as the pinned page they are on: jobs finishing meanwhile shifted
            # every row one place down, so "Older" skipped rows and repeated others.
            context["pinned_at"] = filters["until"]
            context["next_until"] = until_param(filters["until"] or now)
        if filters["error"]:
            # Another list, so the latest one (not pinned).
            kept = {name: params[name] for name in LIST_FILTERS if name not in ("error", "until") and params.get(name)}
            context["any_error_url"] = f"{reverse('dashboard:jobs')}?{urlencode(kept)}"
            # What the fingerprint stands for: a failed job's message is its error (a completed one's is not).
            failed = (job for job in page.object_list if job.status == JobStatus.FAILED)
            context["error_text"] = next((job.message for job in failed), "")
        if filters["job_type"] and filters["job_type"] not in context["job_types"]:
            # A type no longer registered here (renamed or removed by a deploy) stays selectable.
            context["job_types"] = [*context["job_types"], filters["job_type"]]
        if filters["q"] and not page.object_list:
            # Not in this list (finished, or not finished yet): look in every job.
            matches = selectors.jobs_by_id_prefix(filters["q"])
            if len(matches) == 1 and not request.htmx:  # never while the id is being typed or polled
                return redirect("dashboard:job_detail", job_id=matches[0]["id"])
            context["id_matches"] = matches
            context["max_id_matches"] = selectors.MAX_ID_MATCHES
    else:
        status = 400
    return render_page(
        request,
        "dashboard/jobs.html",
        context,
        partials={
            "job-rows": "dashboard/partials/job_rows.html" if status == 200 else FILTER_ERRORS,
            "job-list": "dashboard/partials/job_list.html",  # shows the filter errors itself
        },
        status=status,
    )


# Jobs queued again by one click: each is its own transaction (about six queries); the rest
# match again on the next click, since those retried are no longer failed or cancelled.
MAX_BULK_RETRY = 100
# The finished list's filters, as its "Retry these" form sends them back; `until` too, so that a
# pinned list retries the jobs it shows, not those finished since.
LIST_FILTERS = ("view", "job_type", "status", "window", "q", "error", "until")


@require_POST
@dashboard_view(CONTROL_JOBS)
def retry_jobs(request):
    """The finished list's "Retry these": its failed (or cancelled) jobs, as filtered, queued again."""
    now = clock.now()
    form = BulkRetryForm(request.POST, now=now)
    filters = {name: request.POST[name] for name in LIST_FILTERS if request.POST.get(name)}
    if not form.is_valid():
        notice = f"Nothing retried: {_refused(form)}"
        return _list_page(request, filters, notice=notice, notice_level="error", status=400)
    chosen = form.cleaned_data
    jobs, more = selectors.finished_jobs(
        **finished_span(chosen, now),
        job_type=chosen["job_type"],
        status=chosen["status"],
        job_id=chosen["q"],
        error=chosen["error"],
        limit=MAX_BULK_RETRY,
    )
    retried, left = job_manager.retry_jobs_sync(jobs, by=request.user.get_username())
    notice = bulk_retry_outcome(chosen["status"], retried, left, more, at=clock.now())
    paused = selectors.paused_among({job.job_type for job in jobs}) if retried else []
    if paused:
        # "was … then": the notice is not polled; the paused banner and the list say what holds now.
        notice += f" {', '.join(paused)} {pluralize(len(paused), 'was,were')} paused then: held until resumed."
    if not request.htmx:
        messages.success(request, notice)
        return redirect(f"{reverse('dashboard:jobs')}?{urlencode(filters)}")  # after a POST, a GET
    return _list_page(request, filters, notice=notice)


@require_POST
@dashboard_view(CONTROL_JOBS)
def pause_job_type(request):
    """Pause a job type: none of its jobs starts until it is resumed (jobs.manager)."""
    form = PauseForm(request.POST)
    if not form.is_valid():
        return _list_page(request, {}, notice=f"Nothing paused: {_refused(form)}", notice_level="error", status=400)
    job_type, reason = form.cleaned_data["job_type"], form.cleaned_data["reason"]
    try:
        paused = job_manager.pause_job_type_sync(job_type, by=request.user.get_username(), reason=reason)
    except UnknownJobType as e:
        return _list_page(request, {}, notice=f"Nothing paused: job_type: {e}", notice_level="error", status=400)
    if paused:
        # What was done, which stays true: the banner below, live, says whether it is still paused
        # ("none starts until you resume it" stayed after another operator resumed it).
        messages.success(request, f"Paused {job_type}.")
    else:
        messages.info(request, f"{job_type} was already paused.")
    return _job_type_list(job_type)


@require_POST
@dashboard_view(CONTROL_JOBS)
def resume_job_type(request):
    """Resume a paused job type: each job its pause held is enqueued again."""
    form = PauseForm(request.POST)
    if not form.is_valid():
        return _list_page(request, {}, notice=f"Nothing resumed: {_refused(form)}", notice_level="error", status=400)
    job_type = form.cleaned_data["job_type"]
    held = job_manager.resume_job_type_sync(job_type, by=request.user.get_username())
    level, outcome = resume_outcome(job_type, held)
    messages.add_message(request, level, outcome)
    return _job_type_list(job_type)


def _job_type_list(job_type: str):
    """After a pause or a resume (a POST), a GET of that type's list."""
    return redirect(f"{reverse('dashboard:jobs')}?{urlencode({'job_type': job_type})}")


@require_POST
@dashboard_view(SUBMIT_JOBS)
def submit_job(request):
    """Run a job by hand (the Jobs page's "Run a job…"); its page follows, to watch it."""
    form = SubmitJobForm(request.POST)
    if form.is_valid():
        chosen = form.cleaned_data
        try:
            job = job_manager.submit_job(
                chosen["job_type"],
                chosen["parameters"],
                max_attempts=chosen["max_attempts"],
                submitted_by=request.user.get_username(),
                idempotency_key=form.idempotency_key(),
                owner=request.user,
            )
        except InvalidJobParameters as e:  # refused by the job type: each field named
            refusal = "; ".join(f"{error['field']}: {error['message']}" for error in e.errors)
            form.add_error("parameters", refusal)  # marks the field as the form's own refusals do
        except IdempotencyKeyReused:  # the form's key sent through the API with another job: a new key
            form.add_error("submit_key", "this form's key was used for another job; send the form below again")
            refusal = _refused(form)
        else:
            # Only what stays true: this message stays on the job's page, above its live status,
            # after the job has started and stopped ("it is queued" read so above "completed").
            # The live part says queued, held by a pause, running.
            if job.replayed:  # sent again (a double click, a resend): no second job
                messages.info(request, "This form was already sent: here is the job it started.")
            else:
                messages.success(request, f"Submitted {job.job_type}.")
            return redirect("dashboard:job_detail", job_id=job.id)
    else:
        refusal = _refused(form)
    notice = f"Nothing submitted: {refusal}"
    if not request.user.has_perm(VIEW_JOBS):  # may submit, not look: the refusal without any job
        return HttpResponseBadRequest(notice, content_type="text/plain; charset=utf-8")
    copied = selectors.job_detail(form.cleaned_data["copy_of"]) if form.cleaned_data.get("copy_of") else None
    if copied is not None:  # sent from that job's page: refused there, the form open as sent
        context = page_context(request, copied) | {"notice": notice, "notice_level": "error", "submit_form": form}
        return render_page(request, "dashboard/job_detail.html", context, status=400)
    return _list_page(request, {}, notice=notice, notice_level="error", status=400, submit_form=form)


def _refused(form) -> str:
    """Why an action's form was refused, each field named: "status: …; job_type: …"."""
    return "; ".join(f"{field}: {'; '.join(errors)}" for field, errors in form.errors.items())


def bulk_retry_outcome(status: str, retried: int, left: int, more: bool, *, at) -> str:
    """What one "Retry these" did, in the past tense and timed: it stays above the live list, which
    may have moved on since (the jobs ran, a pause was lifted)."""
    if not retried and not left:
        return f"No {status} job matches these filters any more: nothing retried."
    which = "it was" if retried == 1 else "they were"
    jobs = f"{retried} {status} job{pluralize(retried)}"
    outcome = f"Queued again {jobs} at {at:%H:%M:%S} UTC: {which} put on the Active list"
    if left:
        outcome += f"; {left} had changed since (retried or running again) and were left as they are"
    if more:
        outcome += f". More match: only the {MAX_BULK_RETRY} most recent were retried; retry again for the rest"
    return outcome + "."
