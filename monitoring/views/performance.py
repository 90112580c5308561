"""Performance over a timeframe: execution time, throughput and success rate, overall and per job type."""

from jobs import clock
from jobs.registry import registered_job_types
from monitoring import charts
from monitoring.forms import MetricsFilterForm
from monitoring.metrics import TIMEFRAMES, performance_metrics
from monitoring.permissions import VIEW_METRICS
from monitoring.views.base import FILTER_ERRORS, dashboard_view, render_page

# The figures of a short window move quickly; a month's hardly do, and cost more to compute.
REFRESH_SECONDS = {"15m": 10, "1h": 15, "6h": 30, "24h": 60, "7d": 300, "30d": 300}


def span_name(seconds: int) -> str:
    """30 → "30 s", 60 → "1 min", 7200 → "2 h"."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def metrics_context(
    request, *, default_timeframe: str, form_class=MetricsFilterForm, **parts: bool
) -> tuple[dict, dict | None]:
    """The filters of a metrics page and, when they are valid, performance_metrics for them
    (`parts`: which of its optional parts the page shows, e.g. errors=False; a `form_class` with
    an `error` field narrows them to that error group)."""
    now = clock.now()
    form = form_class(request.GET, default_timeframe=default_timeframe)
    context = {
        "now": now,
        "form": form,
        "timeframes": list(TIMEFRAMES),
        "timeframe": default_timeframe,
        "job_type": "",
        "fingerprint": "",
        "job_types": registered_job_types(),
        "metrics": None,
    }
    if not form.is_valid():
        return context, None
    timeframe, job_type = form.cleaned_data["timeframe"], form.cleaned_data["job_type"]
    error = form.cleaned_data.get("error", "")
    metrics = performance_metrics(timeframe, job_type=job_type or None, error=error or None, now=now, **parts)
    refresh = REFRESH_SECONDS[timeframe]
    context.update(
        timeframe=timeframe,
        job_type=job_type,
        fingerprint=error,
        metrics=metrics,
        bucket=span_name(metrics["bucket_seconds"]),
        refresh_seconds=refresh,
        refresh=span_name(refresh),
        hidden_refresh_seconds=max(refresh, 30),
        longer_timeframes=[t for t in TIMEFRAMES if TIMEFRAMES[t] > TIMEFRAMES[timeframe]],
    )
    if job_type and job_type not in context["job_types"]:
        context["job_types"] = [*context["job_types"], job_type]
    return context, metrics


def _charts(metrics: dict, bucket: str) -> dict:
    series = metrics["series"]
    buckets = [row["bucket_start"] for row in series]
    size = metrics["bucket_seconds"]
    rates = [
        None if not (row["succeeded"] + row["failed"]) else 100 * row["succeeded"] / (row["succeeded"] + row["failed"])
        for row in series
    ]
    return {
        "latency": charts.line_chart(
            chart_id="chart-latency",
            title="Execution time of completed attempts",
            buckets=buckets,
            bucket_seconds=size,
            series=[
                charts.Series("p50 (median)", [row["p50_ms"] for row in series], tone="blue", marker="circle"),
                charts.Series("p95", [row["p95_ms"] for row in series], tone="orange", dash="6 4", marker="square"),
            ],
            unit=charts.MS,
            y_label="execution time",
        ),
        "throughput": charts.stacked_bar_chart(
            chart_id="chart-throughput",
            title=f"Jobs finished per {bucket}",
            buckets=buckets,
            bucket_seconds=size,
            series=[
                charts.Series("succeeded", [row["succeeded"] for row in series], tone="green"),
                charts.Series("failed", [row["failed"] for row in series], tone="red", pattern="stripes"),
                charts.Series("cancelled", [row["cancelled"] for row in series], tone="violet", pattern="dots"),
            ],
            unit=charts.COUNT,
            y_label="jobs",
        ),
        "success_rate": charts.line_chart(
            chart_id="chart-success-rate",
            title="Success rate",
            buckets=buckets,
            bucket_seconds=size,
            series=[charts.Series("succeeded / (succeeded + failed)", rates, tone="green", marker="diamond")],
            unit=charts.PERCENT,
            y_label="success rate",
            y_max=100,
        ),
    }


@dashboard_view(VIEW_METRICS)
def performance(request):
    # The error analysis is the Errors page's (a quarter of the request at 30 days).
    context, metrics = metrics_context(request, default_timeframe="1h", errors=False)
    if metrics is not None:
        context["charts"] = _charts(metrics, context["bucket"])
    return render_page(
        request,
        "dashboard/performance.html",
        context,
        partials={"metrics-live": "dashboard/partials/performance_live.html" if metrics is not None else FILTER_ERRORS},
        status=200 if metrics is not None else 400,
    )
