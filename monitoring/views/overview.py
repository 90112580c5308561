from datetime import timedelta

from django.utils import timezone

from monitoring import selectors
from monitoring.permissions import VIEW_JOBS
from monitoring.views.base import dashboard_view, render_page

RECENT_FAILURES_WINDOW = timedelta(hours=1)


@dashboard_view(VIEW_JOBS)
def overview(request):
    now = timezone.now()
    failures, failures_total = selectors.recent_failures(since=now - RECENT_FAILURES_WINDOW)
    context = {
        "now": now,
        "counts": selectors.active_job_counts(),
        "failures": failures,
        "failures_total": failures_total,
        "failures_window": RECENT_FAILURES_WINDOW,
    }
    return render_page(
        request, "dashboard/overview.html", context, partials={"overview-live": "dashboard/partials/overview_live.html"}
    )
