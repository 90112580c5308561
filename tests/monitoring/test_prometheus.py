"""/metrics: the Prometheus text format, parsed back, and who may read it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import JobStatus
from monitoring.models import EventType
from tests.factories import (
    AlertHistoryFactory,
    JobExecutionLogFactory,
    JobFactory,
    SystemHealthMetricFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
TOKEN = "scraper-token-0123456789"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def scrape(client, **headers) -> dict:
    """{(sample name, frozenset(labels)): value} of a successful scrape."""
    with time_machine.travel(NOW, tick=False):
        response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def completed(job, ms, minutes_ago=1):
    JobExecutionLogFactory(
        job=job,
        event_type=EventType.COMPLETED,
        status=JobStatus.COMPLETED,
        execution_time_ms=ms,
        timestamp=NOW - timedelta(minutes=minutes_ago),
    )


def test_jobs_by_type_and_status_and_retries(client, token):
    JobFactory.create_batch(2, job_type="ai_matching", completed=True)
    JobFactory(job_type="ai_matching", failed=True, attempts=3)
    JobFactory(job_type="ai_matching", status=JobStatus.RETRYING, attempts=2)
    JobFactory(job_type="demo.sleep", running=True)

    samples = scrape(client, **token)
    assert value(samples, "jobmonitor_jobs", job_type="ai_matching", status="completed") == 2
    assert value(samples, "jobmonitor_jobs", job_type="ai_matching", status="failed") == 1
    assert value(samples, "jobmonitor_jobs", job_type="demo.sleep", status="running") == 1
    assert value(samples, "jobmonitor_job_retries_total", job_type="ai_matching") == 3  # 2 + 1
    assert value(samples, "jobmonitor_job_retries_total", job_type="demo.sleep") == 0


def test_execution_time_histogram_of_the_recent_window(client, token):
    job = JobFactory(job_type="ai_matching")
    for ms in (80, 100, 400, 7_000):
        completed(job, ms)
    completed(job, 50, minutes_ago=6)  # outside the 5-minute window
    JobExecutionLogFactory(job=job, event_type=EventType.ERROR, execution_time_ms=90, timestamp=NOW)

    samples = scrape(client, **token)
    bucket = "jobmonitor_job_execution_seconds_bucket"
    assert value(samples, bucket, job_type="ai_matching", le="0.1") == 2  # 80 and 100 ms: le is inclusive
    assert value(samples, bucket, job_type="ai_matching", le="0.5") == 3
    assert value(samples, bucket, job_type="ai_matching", le="5.0") == 3
    assert value(samples, bucket, job_type="ai_matching", le="10.0") == 4
    assert value(samples, bucket, job_type="ai_matching", le="+Inf") == 4
    assert value(samples, "jobmonitor_job_execution_seconds_gcount", job_type="ai_matching") == 4
    assert value(samples, "jobmonitor_job_execution_seconds_gsum", job_type="ai_matching") == pytest.approx(7.58)


def test_open_alerts_by_severity(client, token):
    AlertHistoryFactory.create_batch(2, severity="critical")
    AlertHistoryFactory(severity="warning")
    AlertHistoryFactory(severity="critical", resolved_at=NOW)

    samples = scrape(client, **token)
    assert {
        severity: value(samples, "jobmonitor_open_alerts", severity=severity)
        for severity in ("info", "warning", "error", "critical")
    } == {"info": 0, "warning": 1, "error": 0, "critical": 2}


def test_each_health_component_s_status(client, token):
    checked = NOW - timedelta(minutes=1)
    SystemHealthMetricFactory(metric_name="database.latency_ms", metric_value=2.5, status="healthy", timestamp=checked)
    SystemHealthMetricFactory(
        metric_type="api", metric_name="ai_matching", metric_value=3100, status="critical", timestamp=checked
    )

    samples = scrape(client, **token)
    status = "jobmonitor_health_status"
    # host="" is no label to Prometheus: the components of the whole system have no host.
    ai, db = {"metric_type": "api", "metric_name": "ai_matching", "host": ""}, {"metric_type": "database", "host": ""}
    assert value(samples, status, **ai, status="critical") == 1
    assert value(samples, status, **ai, status="healthy") == 0
    assert value(samples, status, **db, metric_name="database.latency_ms", status="healthy") == 1
    assert value(samples, "jobmonitor_health_value", **db, metric_name="database.latency_ms") == 2.5
    assert value(samples, "jobmonitor_health_overall", status="critical") == 1
    assert value(samples, "jobmonitor_health_overall", status="unknown") == 0
    assert value(samples, "jobmonitor_health_checked_timestamp_seconds") == checked.timestamp()


def test_each_hosts_resources_are_series_of_their_own(client, token):
    checked = NOW - timedelta(minutes=1)
    for host, percent, status in (("node-a", 97, "critical"), ("node-b", 50, "healthy")):
        SystemHealthMetricFactory(
            metric_type="resource",
            metric_name="disk.percent",
            metric_value=percent,
            status=status,
            details={"message": f"disk / {percent} % full on {host}", "host": host},
            timestamp=checked - timedelta(minutes=1 if host == "node-a" else 0),
        )
    SystemHealthMetricFactory(timestamp=checked, metric_type="database", metric_name="database.latency_ms")

    samples = scrape(client, **token)
    disk = {"metric_type": "resource", "metric_name": "disk.percent"}
    assert value(samples, "jobmonitor_health_status", **disk, host="node-a", status="critical") == 1
    assert value(samples, "jobmonitor_health_status", **disk, host="node-b", status="healthy") == 1
    assert value(samples, "jobmonitor_health_value", **disk, host="node-a") == 97
    assert value(samples, "jobmonitor_health_value", **disk, host="node-b") == 50
    assert value(samples, "jobmonitor_health_overall", status="critical") == 1


def test_nothing_checked_yet_reports_unknown(client, token):
    samples = scrape(client, **token)
    assert value(samples, "jobmonitor_health_overall", status="unknown") == 1
    assert not any(name == "jobmonitor_health_checked_timestamp_seconds" for name, _ in samples)


def test_when_a_worker_was_last_seen_a_check_run_by_hand_without_a_cluster_aside(client, token):
    def workers(minutes_ago, status):
        at = NOW - timedelta(minutes=minutes_ago)
        SystemHealthMetricFactory(metric_type="job_queue", metric_name="cluster.workers", status=status, timestamp=at)

    workers(10, "healthy")  # the scheduled check on a live cluster
    workers(1, "critical")  # manage.py run_health_checks after every cluster died

    samples = scrape(client, **token)
    assert value(samples, "jobmonitor_worker_seen_timestamp_seconds") == (NOW - timedelta(minutes=10)).timestamp()
    assert value(samples, "jobmonitor_health_checked_timestamp_seconds") == (NOW - timedelta(minutes=1)).timestamp()

    JobFactory(running=True, heartbeat_at=NOW - timedelta(seconds=3))  # a worker busy with a long job
    samples = scrape(client, **token)
    assert value(samples, "jobmonitor_worker_seen_timestamp_seconds") == (NOW - timedelta(seconds=3)).timestamp()


def test_a_scrape_runs_a_fixed_number_of_queries(client, token, django_assert_max_num_queries):
    for job_type in ("a", "b", "c"):
        job = JobFactory(job_type=job_type, completed=True)
        completed(job, 100)
    AlertHistoryFactory()
    SystemHealthMetricFactory(timestamp=NOW)
    # jobs, histogram, open alerts, latest health (2), worker last seen (2)
    with django_assert_max_num_queries(7):
        scrape(client, **token)


def test_openmetrics_when_the_scraper_asks_for_it(client, token):
    job = JobFactory(job_type="ai_matching")
    completed(job, 400)
    with time_machine.travel(NOW, tick=False):
        response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0", **token)
    assert response["Content-Type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(response.content.decode())}
    histogram = families["jobmonitor_job_execution_seconds"]
    assert histogram.type == "gaugehistogram"
    assert {s.name: s.value for s in histogram.samples if s.labels.get("le") in (None, "+Inf")} == {
        "jobmonitor_job_execution_seconds_bucket": 1,
        "jobmonitor_job_execution_seconds_gcount": 1,
        "jobmonitor_job_execution_seconds_gsum": 0.4,
    }


# --- who may read it -----------------------------------------------------------------------


def test_without_credentials_it_is_401_with_a_bearer_challenge(client, token):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_a_wrong_token_is_401(client, token):
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_no_token_is_accepted_when_none_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_a_logged_in_user_allowed_to_view_metrics_may_read_it(client, alice):
    client.force_login(alice)
    scrape(client)


def test_a_logged_in_user_without_the_permission_is_403(client, nobody):
    client.force_login(nobody)
    response = client.get("/metrics")
    assert (response.status_code, response.content) == (403, b"permission required: monitoring.view_jobexecutionlog\n")


def test_only_get_and_head(client, token):
    assert client.head("/metrics", **token).status_code == 200
    assert client.post("/metrics", **token).status_code == 405


def test_a_post_is_405_even_with_csrf_checks_on(token):
    """As a scraper sends it (the test client skips the CSRF check): a POST was Django's HTML page
    "CSRF verification failed" (403), not the 405 for a method the endpoint does not have."""
    response = Client(enforce_csrf_checks=True).post("/metrics", **token)

    assert (response.status_code, response["Allow"]) == (405, "GET, HEAD")


def test_a_logged_in_user_reads_open_alerts_and_health_only_with_their_own_permissions(client):
    """As on the overview and in the API: the metrics permission alone shows the jobs' figures, not
    how many alerts are open nor what the health checks found. The scraper's token reads everything."""
    JobFactory(job_type="ai_matching")
    AlertHistoryFactory(severity="critical")
    SystemHealthMetricFactory(status="critical", timestamp=NOW - timedelta(minutes=1))
    only_metrics = UserFactory(username="metrics-only", permissions=["monitoring.view_jobexecutionlog"])
    client.force_login(only_metrics)

    samples = scrape(client)
    assert value(samples, "jobmonitor_jobs", job_type="ai_matching", status="queued") == 1
    names = {name for name, _ in samples}
    hidden = ("jobmonitor_open_alerts", "jobmonitor_health", "jobmonitor_worker")
    assert not any(name.startswith(hidden) for name in names)

    client.force_login(UserFactory(username="oncall", permissions=[
        "monitoring.view_jobexecutionlog", "alerts.view_alerthistory", "monitoring.view_systemhealthmetric",
    ]))  # fmt: skip
    samples = scrape(client)
    assert value(samples, "jobmonitor_open_alerts", severity="critical") == 1
    assert value(samples, "jobmonitor_health_overall", status="critical") == 1
