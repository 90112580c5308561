"""Real-time job status: active jobs (or recently finished ones), filtered, paginated, live."""

from django.core.paginator import Paginator
from django.utils import timezone

from jobs.models import ACTIVE_STATUSES, FINISHED_STATUSES
from jobs.registry import registered_job_types
from monitoring import selectors
from monitoring.forms import FINISHED_WINDOWS, JobFilterForm
from monitoring.permissions import VIEW_JOBS
from monitoring.views.base import dashboard_view, render_page

PAGE_SIZE = 50


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
        jobs = selectors.job_list_queryset(
            finished=form.finished,
            job_type=filters["job_type"],
            status=filters["status"],
            job_id=filters["q"],
            finished_since=now - FINISHED_WINDOWS[filters["window"]] if form.finished else None,
        )
        context["page"] = Paginator(jobs, PAGE_SIZE).get_page(filters["page"])
        context["filtered"] = any(filters[f] for f in ("job_type", "status", "q"))
        if filters["q"] and not context["page"].object_list:
            context["searched"] = selectors.job_by_exact_id(filters["q"])
    else:
        status = 400
    return render_page(
        request,
        "dashboard/jobs.html",
        context,
        partials={"job-rows": "dashboard/partials/job_rows.html", "job-list": "dashboard/partials/job_list.html"},
        status=status,
    )
