"""Real-time job status: active jobs (or recently finished ones), filtered, paginated, live."""

import math
from dataclasses import dataclass

from django.utils import timezone

from jobs.models import ACTIVE_STATUSES, FINISHED_STATUSES
from jobs.registry import registered_job_types
from monitoring import selectors
from monitoring.forms import FINISHED_WINDOWS, JobFilterForm
from monitoring.permissions import VIEW_JOBS
from monitoring.views.base import FILTER_ERRORS, dashboard_view, render_page

PAGE_SIZE = 50


@dataclass
class ListPage:
    """One page of a list. `total` is known for active jobs (a small set) and not counted for
    finished ones (the window may hold millions)."""

    object_list: list
    number: int
    has_next: bool
    total: int | None = None
    per_page: int = PAGE_SIZE

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.object_list else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.object_list)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def num_pages(self) -> int | None:
        return None if self.total is None else max(1, math.ceil(self.total / self.per_page))


def _active_page(filters: dict) -> ListPage:
    jobs = selectors.active_job_list(job_type=filters["job_type"], status=filters["status"], job_id=filters["q"])
    total = jobs.count()
    # Jobs finish while the operator pages: past the end means the last page.
    number = min(filters["page"] or 1, max(1, math.ceil(total / PAGE_SIZE)))
    rows = list(jobs[(number - 1) * PAGE_SIZE : number * PAGE_SIZE])
    return ListPage(rows, number, has_next=number * PAGE_SIZE < total, total=total)


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
    return ListPage(rows, number, has_next=more)


@dashboard_view(VIEW_JOBS)
def job_list(request):
    now = timezone.now()
    form = JobFilterForm(request.GET)
    view = request.GET.get("view") if request.GET.get("view") in ("active", "finished") else "active"
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
        page = _finished_page(filters, now) if form.finished else _active_page(filters)
        context["page"] = page
        context["filtered"] = any(filters[f] for f in ("job_type", "status", "q"))
        if filters["q"] and not page.object_list:
            context["searched"] = selectors.job_by_exact_id(filters["q"])
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
