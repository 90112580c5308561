"""Error analysis over a timeframe: how often jobs fail, with what, and the same errors grouped."""

from monitoring import charts, selectors
from monitoring.forms import FINISHED_WINDOWS, ErrorsFilterForm, finished_window
from monitoring.permissions import VIEW_ALERTS, VIEW_METRICS
from monitoring.views.base import FILTER_ERRORS, dashboard_view, render_page
from monitoring.views.jobs import MAX_BULK_RETRY
from monitoring.views.performance import metrics_context

# What each class means for the operator (jobs/errors.py decides the class).
CLASS_NOTES = {
    "transient": "timeouts, connection errors, HTTP 429/5xx: retried automatically",
    "configuration": "missing settings or keys, HTTP 401/403: fix the configuration, then retry",
    "data": "invalid input, constraint violations: fix the data and resubmit",
    "system": "memory, disk, lost workers, anything unknown: retried; look at the hosts",
    "unknown": "recorded without a class",
}


def _frequency_chart(metrics: dict, bucket: str):
    series = metrics["series"]
    stacks = [
        charts.Series("failed for good", [row["failed"] for row in series], tone="red", pattern="stripes"),
        charts.Series("failed, then retried", [row["retried_failures"] for row in series], tone="amber"),
    ]
    # The rest of the failed attempts: a cancel stopped their retry (shown only when there are some).
    stopped = [row["failed_attempts"] - row["failed"] - row["retried_failures"] for row in series]
    if any(stopped):
        stacks.append(charts.Series("failed, retry cancelled", stopped, tone="slate"))
    return charts.stacked_bar_chart(
        chart_id="chart-errors",
        title=f"Failed attempts per {bucket}",
        buckets=[row["bucket_start"] for row in series],
        bucket_seconds=metrics["bucket_seconds"],
        series=stacks,
        unit=charts.COUNT,
        y_label="attempts",
        width=1100,  # the page's full width
    )


def _shares(rows: list[dict], total: int) -> list[dict]:
    return [{**row, "share": row["count"] / total if total else None} for row in rows]


def _attach_alerts(metrics: dict) -> None:
    """Each top error group's alerts (those its failures raised or were counted into)."""
    fingerprints = [group["fingerprint"] for group in metrics["top_errors"]]
    alerts = selectors.error_group_alerts(fingerprints, since=metrics["since"], until=metrics["until"])
    for group in metrics["top_errors"]:
        found = alerts.get(group["fingerprint"], {"alerts": [], "count": 0})
        group["alerts"] = found["alerts"]  # the first few
        group["more_alerts"] = found["count"] - len(found["alerts"])


def _failed_jobs_now(context: dict, metrics: dict) -> dict[str, int]:
    """How many jobs each group shown (or the one group's fingerprint) left failed for good now,
    in the list its "failed for good →" link opens, up to what one click retries: jobs retried or
    completed since are listed no more, and a group whose jobs all were gets no link to an empty list."""
    errors = [group["fingerprint"] for group in metrics["top_errors"] if group["fingerprint"]]
    if context["fingerprint"] and context["fingerprint"] not in errors:
        errors.append(context["fingerprint"])  # quiet in the timeframe, it may have failed jobs in the list's
    if not errors:
        return {}
    since = metrics["until"] - FINISHED_WINDOWS[context["failed_jobs_window"]]
    return selectors.failed_jobs_counts(
        since=since, errors=errors, job_type=context["job_type"] or None, cap=MAX_BULK_RETRY
    )


@dashboard_view(VIEW_METRICS)
def errors(request):
    # Execution times and figures per job type are the Performance page's: without them the
    # window's counts need no join to jobs (0.4 s of a 30-day poll, docs/benchmark.md).
    # ?error=<fingerprint>: one error group's own view, every figure about it only.
    context, metrics = metrics_context(
        request, default_timeframe="24h", form_class=ErrorsFilterForm, execution_times=False, by_job_type=False
    )
    if metrics is not None:
        total = metrics["overall"]["failed_attempts"]
        context.update(
            frequency_chart=_frequency_chart(metrics, context["bucket"]),
            by_class=[
                {**row, "note": CLASS_NOTES.get(row["error_class"], "")}
                for row in _shares(metrics["errors_by_class"], total)
            ],
            by_type=_shares(metrics["errors_by_type"], total),
            top_errors=metrics["top_errors"],
            error_groups=metrics["error_groups"],
            can_view_alerts=request.user.has_perm(VIEW_ALERTS),
            # Not failed_attempts - failed: an attempt whose retry a cancel stopped got no other chance.
            retried_failures=metrics["overall"]["retried_failures"],
            failed_jobs_window=finished_window(context["timeframe"]),
            # The one group shown (None when it did not fail in the timeframe).
            group=metrics["top_errors"][0] if context["fingerprint"] and metrics["top_errors"] else None,
            # The tile counts failures for good (outcomes); the list it opens, the jobs failed still.
            still_failed=selectors.still_failed_jobs(
                since=metrics["since"], job_type=context["job_type"] or None, error=context["fingerprint"]
            ).count(),
            max_bulk_retry=MAX_BULK_RETRY,
        )
        failed_now = _failed_jobs_now(context, metrics)
        for group in metrics["top_errors"]:
            group["failed_jobs_now"] = failed_now.get(group["fingerprint"], 0)
        context["failed_jobs_now"] = failed_now.get(context["fingerprint"], 0)  # the one group's
        if context["can_view_alerts"]:
            _attach_alerts(metrics)
    return render_page(
        request,
        "dashboard/errors.html",
        context,
        partials={"errors-live": "dashboard/partials/errors_live.html" if metrics is not None else FILTER_ERRORS},
        status=200 if metrics is not None else 400,
    )
