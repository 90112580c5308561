"""Real-time job status: active jobs (or recently finished ones), filtered, paginated, live."""

from django.shortcuts import redirect
from django.utils import timezone

from jobs.models import ACTIVE_STATUSES, FINISHED_STATUSES
from jobs.registry import registered_job_types
from monitoring import selectors
from monitoring.forms import FINISHED_WINDOWS, MAX_ACTIVE_PAGES, MAX_FINISHED_PAGES, JobFilterForm, list_view_of
from monitoring.permissions import VIEW_JOBS
from monitoring.timeline import attempt_clock
from monitoring.views.base import FILTER_ERRORS, PAGE_SIZE, ListPage, dashboard_view, render_page


def _active_page(filters: dict, now) -> ListPage:
    jobs = selectors.active_job_list(
        job_type=filters["job_type"],
        status=filters["status"],
        job_id=filters["q"],
        attention_at=now if filters["attention"] else None,
    )
    return ListPage.counted(jobs, filters["page"], max_pages=MAX_ACTIVE_PAGES)


def _finished_page(filters: dict, now) -> ListPage:
    number = filters["page"] or 1
    rows, more = selectors.finished_jobs(
        since=now - FINISHED_WINDOWS[filters["window"]],
        job_type=filters["job_type"],
        status=filters["status"],
        job_id=filters["q"],
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    return ListPage.within(rows, number, more=more, max_pages=MAX_FINISHED_PAGES)


@dashboard_view(VIEW_JOBS)
def job_list(request):
    now = timezone.now()
    form = JobFilterForm(request.GET)
    view = list_view_of(request.GET)
    context = {
        "now": now,
        "form": form,
        "view": view,
        "job_types": registered_job_types(),
        "status_choices": FINISHED_STATUSES if view == "finished" else ACTIVE_STATUSES,
        "windows": list(FINISHED_WINDOWS),
        "page": None,
    }
    status = 200
    if form.is_valid():
        filters = form.cleaned_data
        page = _finished_page(filters, now) if form.finished else _active_page(filters, now)
        context["page"] = page
        context["clocks"] = {job.id: attempt_clock(job, now) for job in page.object_list}
        context["filtered"] = any(filters[f] for f in ("job_type", "status", "q", "attention"))
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
