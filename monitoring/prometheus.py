"""/metrics in the Prometheus text format, read from the database at scrape time.

Nothing is counted in process memory: every web process reports the same numbers, and a
restart loses nothing. Seven queries per scrape: the jobs count (one GROUP BY over the jobs
table), the execution-time histogram (a short window, partial index), open alerts (partial
index), the latest health (two, over the last few minutes of rows) and when a worker was last
seen (two, by index).
"""

import hmac
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from alerts.selectors import open_alert_counts
from jobs import clock
from monitoring.health import UNKNOWN, latest_health, worker_liveness
from monitoring.metrics import execution_time_histogram, jobs_by_type_and_status
from monitoring.models import HealthStatus
from monitoring.permissions import VIEW_ALERTS, VIEW_HEALTH, VIEW_METRICS

# Upper bounds of the execution-time histogram: 100 ms to 1 h.
HISTOGRAM_BOUNDS_MS = (
    *(100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000),
    *(60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000),
)
HEALTH_STATUSES = (HealthStatus.HEALTHY, HealthStatus.WARNING, HealthStatus.CRITICAL)


class DatabaseCollector:
    """A prometheus_client collector whose every value comes from the database.

    `user`: a logged-in reader, shown open alerts and health only with their own permissions (as
    the dashboard and the API show them); None is the scraper's token, which reads everything."""

    def __init__(self, user=None):
        self.user = user

    def collect(self):
        yield from self._jobs()
        yield self._execution_times()
        if self._may(VIEW_ALERTS):
            yield self._open_alerts()
        if self._may(VIEW_HEALTH):
            yield from self._health()
            yield from self._workers()

    def _may(self, permission: str) -> bool:
        return self.user is None or self.user.has_perm(permission)

    def _jobs(self):
        jobs = GaugeMetricFamily("jobmonitor_jobs", "Jobs by type and current status.", labels=["job_type", "status"])
        retries = CounterMetricFamily(
            "jobmonitor_job_retries", "Attempts started after a job's first one, by job type.", labels=["job_type"]
        )
        retries_by_type: dict[str, int] = {}
        for row in jobs_by_type_and_status():
            jobs.add_metric([row["job_type"], row["status"]], row["count"])
            retries_by_type[row["job_type"]] = retries_by_type.get(row["job_type"], 0) + row["retries"]
        for job_type, count in sorted(retries_by_type.items()):
            retries.add_metric([job_type], count)
        return jobs, retries

    def _execution_times(self):
        minutes = settings.METRICS_HISTOGRAM_WINDOW_MINUTES
        # A gauge histogram: it describes the attempts of a sliding window, so it goes down too.
        histogram = GaugeHistogramMetricFamily(
            "jobmonitor_job_execution_seconds",
            f"Execution time of the attempts completed in the last {minutes} minutes, by job type.",
            labels=["job_type"],
        )
        now = clock.now()
        histograms = execution_time_histogram(
            since=now - timedelta(minutes=minutes), until=now, bounds_ms=HISTOGRAM_BOUNDS_MS
        )
        for job_type, data in histograms.items():
            buckets = [(floatToGoString(bound / 1000), count) for bound, count in data["buckets"]]
            buckets.append(("+Inf", data["count"]))
            histogram.add_metric([job_type], buckets, gsum_value=data["sum_ms"] / 1000)
        return histogram

    def _open_alerts(self):
        alerts = GaugeMetricFamily("jobmonitor_open_alerts", "Unresolved alerts by severity.", labels=["severity"])
        for severity, count in open_alert_counts().items():
            alerts.add_metric([severity], count)
        return alerts

    def _health(self):
        health = latest_health()
        status = GaugeMetricFamily(
            "jobmonitor_health_status",
            "1 for each health component's current status, 0 for the other statuses.",
            labels=["metric_type", "metric_name", "host", "status"],
        )
        value = GaugeMetricFamily(
            "jobmonitor_health_value",
            "Each health component's last measured value (ms, %, count… as its name says).",
            labels=["metric_type", "metric_name", "host"],
        )
        for c in health["components"]:
            # Each host's resources are series of their own; "" (no label) for the system's components.
            component = [c["metric_type"], c["metric_name"], c["host"] or ""]
            for candidate in HEALTH_STATUSES:
                status.add_metric([*component, candidate], int(c["status"] == candidate))
            value.add_metric(component, c["metric_value"])
        overall = GaugeMetricFamily(
            "jobmonitor_health_overall",
            "1 for the overall health status (the worst component's), 0 for the others.",
            labels=["status"],
        )
        for candidate in (*HEALTH_STATUSES, UNKNOWN):
            overall.add_metric([candidate], int(health["status"] == candidate))
        yield from (status, value, overall)
        if health["checked_at"] is not None:
            yield GaugeMetricFamily(
                "jobmonitor_health_checked_timestamp_seconds",
                "When the health checks last stored results (Unix time): alert if it stops moving.",
                value=health["checked_at"].timestamp(),
            )

    def _workers(self):
        # Outside the checks' own timestamp: a check run by hand while no cluster runs moves that one.
        last_seen = worker_liveness(clock.now())["last_seen_at"]
        if last_seen is not None:
            yield GaugeMetricFamily(
                "jobmonitor_worker_seen_timestamp_seconds",
                "When a django-q2 worker was last seen alive (Unix time; by a health check or a running job's"
                " heartbeat): alert if it stops moving.",
                value=last_seen.timestamp(),
            )


def _unauthorized(reason: str) -> HttpResponse:
    response = HttpResponse(f"{reason}\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def _is_scraper(request) -> bool:
    """The request sends the scraper's token (a wrong one is refused by _denied)."""
    header = request.headers.get("Authorization", "")
    token = settings.METRICS_TOKEN
    if not token or header[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def _denied(request) -> HttpResponse | None:
    """None when the request may read the metrics: the scraper's token, or a user allowed to."""
    if request.headers.get("Authorization", "")[:7].lower() == "bearer ":
        return None if _is_scraper(request) else _unauthorized("invalid token")
    if request.user.is_authenticated:
        if request.user.has_perm(VIEW_METRICS):
            return None
        return HttpResponse(f"permission required: {VIEW_METRICS}\n", status=403, content_type="text/plain")
    return _unauthorized("send Authorization: Bearer <METRICS_TOKEN>, or log in")


@csrf_exempt  # it only reads: a POST is require_safe's 405, not Django's HTML CSRF page
@require_safe
def metrics_view(request):
    denied = _denied(request)
    if denied is not None:
        return denied
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(user=None if _is_scraper(request) else request.user))
    # The Prometheus text format, or OpenMetrics when the scraper asks for it.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encode(registry), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
