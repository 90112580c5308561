"""check_external_services against real local HTTP servers: up, slow, hanging, failing, closed."""

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import time_machine
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from alerts.models import AlertHistory
from jobs.errors import ErrorType, error_details
from jobs.models import JobStatus
from monitoring.health import external_services, health_service
from monitoring.models import EventType
from tests.factories import JobExecutionLogFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        if self.path.startswith("/slow"):
            time.sleep(0.3)  # the service under test is slow; the test itself never waits on time
        elif self.path.startswith("/hang"):
            server.release.wait(10)
        elif self.path.startswith("/together"):
            server.barrier.wait()  # answers only once two probes are in flight at the same time
        status = 500 if self.path.startswith("/error") else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.release = threading.Event()
    server.barrier = threading.Barrier(2, timeout=5)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.release.set()
    server.barrier.abort()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def services(settings, *entries):
    settings.HEALTH = {**settings.HEALTH, "EXTERNAL_SERVICES": list(entries)}


def probe(settings, *entries) -> dict:
    services(settings, *entries)
    return {c["metric_name"]: c for c in health_service.check_external_services_sync()["components"]}


def test_a_service_that_answers_quickly_is_healthy(settings, http_server):
    result = probe(settings, {"name": "webhook", "url": f"{http_server}/ok?token=s3cret", "timeout": 2})["webhook"]
    assert result["metric_type"] == "api"
    assert result["status"] == "healthy"
    assert 0 < result["metric_value"] < 1000
    assert result["details"]["status_code"] == 200
    # Only the origin is kept: webhook URLs often carry their secret.
    assert result["details"]["url"] == http_server


def test_a_slow_service_is_a_warning(settings, http_server):
    thresholds = {**settings.HEALTH["THRESHOLDS"], "api.latency_ms": (100, 5000)}
    settings.HEALTH = {**settings.HEALTH, "THRESHOLDS": thresholds}
    result = probe(settings, {"name": "crm", "url": f"{http_server}/slow", "timeout": 3})["crm"]
    assert result["status"] == "warning"
    assert result["metric_value"] >= 300
    assert result["details"]["message"].endswith("(slow)")


def test_a_service_that_does_not_answer_in_time_is_critical(settings, http_server):
    result = probe(settings, {"name": "crm", "url": f"{http_server}/hang", "timeout": 0.2})["crm"]
    assert result["status"] == "critical"
    assert result["details"]["message"] == "no answer within 0.2s"


def test_an_unreachable_service_is_critical(settings, closed_port):
    result = probe(settings, {"name": "crm", "url": f"http://127.0.0.1:{closed_port}/health", "timeout": 2})["crm"]
    assert result["status"] == "critical"
    assert result["details"]["message"].startswith("unreachable: ConnectError")


def test_an_error_status_is_critical(settings, http_server):
    result = probe(settings, {"name": "crm", "url": f"{http_server}/error", "timeout": 2})["crm"]
    assert (result["status"], result["details"]["status_code"]) == ("critical", 500)
    assert result["details"]["message"].startswith("answered HTTP 500")


def test_services_are_probed_at_the_same_time(settings, http_server):
    # Each answers only while the other is in flight: probed one after the other, both would time out.
    results = probe(
        settings,
        {"name": "a", "url": f"{http_server}/together", "timeout": 3},
        {"name": "b", "url": f"{http_server}/together", "timeout": 3},
    )
    assert [results["a"]["status"], results["b"]["status"]] == ["healthy", "healthy"]


def test_the_ai_matching_service_is_probed_at_its_health_url(settings, http_server):
    settings.AI_MATCHING_URL = f"{http_server}/"
    services(settings)
    assert external_services()[0] == {"name": "ai_matching", "url": f"{http_server}/health", "timeout": 5.0}
    assert probe(settings)["ai_matching"]["status"] == "healthy"


def test_one_dead_service_does_not_hide_the_others_in_a_full_run(settings, http_server, closed_port):
    services(
        settings,
        {"name": "up", "url": f"{http_server}/ok", "timeout": 2},
        {"name": "down", "url": f"http://127.0.0.1:{closed_port}/", "timeout": 2},
    )
    components = {c["metric_name"]: c for c in health_service.run_health_checks_sync()["components"]}
    assert (components["up"]["status"], components["down"]["status"]) == ("healthy", "critical")
    assert components["database.latency_ms"]["status"] == "healthy"


@pytest.mark.parametrize(
    "entries, error",
    [
        ({"name": "x"}, "HEALTH_EXTERNAL_SERVICES must be a JSON list"),
        (["https://example.com"], r"HEALTH_EXTERNAL_SERVICES\[0\] must be an object"),
        ([{"url": "https://example.com"}], r"HEALTH_EXTERNAL_SERVICES\[0\]\.name"),
        ([{"name": "x", "url": "ftp://example.com"}], r"HEALTH_EXTERNAL_SERVICES\[0\]\.url must be an http"),
        ([{"name": "x", "url": "http://[x/health"}], r"\[0\]\.url must be an http"),  # was a ValueError
        ([{"name": "x", "url": "https://example.com:99999/"}], r"\[0\]\.url must be an http"),  # the probe's ValueError
        ([{"name": "x", "url": "https://example.com", "timeout": "2"}], r"\[0\]\.timeout must be a number"),
        ([{"name": "x", "url": "https://a.com"}, {"name": "x", "url": "https://b.com"}], r"\[1\]\.name 'x' is used"),
    ],
)
def test_a_wrong_services_setting_names_the_entry(settings, entries, error):
    settings.HEALTH = {**settings.HEALTH, "EXTERNAL_SERVICES": entries}
    with pytest.raises(ImproperlyConfigured, match=error):
        external_services()
    assert [e.id for e in run_checks() if e.id.startswith("monitoring.")] == ["monitoring.E001"]


def test_a_wrong_services_setting_makes_the_api_component_critical_not_the_run_fail(settings):
    settings.HEALTH = {**settings.HEALTH, "EXTERNAL_SERVICES": [{"name": "x"}]}
    result = health_service.run_health_checks_sync()
    api = [c for c in result["components"] if c["metric_type"] == "api"]
    assert [(c["metric_name"], c["status"]) for c in api] == [("check_external_services", "critical")]
    assert "HEALTH_EXTERNAL_SERVICES[0].url" in api[0]["details"]["message"]


# --- failed job calls: a service may answer its health URL and fail the real work ---------------


def failed_call(url: str, *, minutes_ago: float = 1, status: int | None = 503, error=None, job_type="ai_matching"):
    """The error event a job attempt leaves when its call to `url` fails (as the job manager records it)."""
    request = httpx.Request("POST", url)
    if error is None:
        response = httpx.Response(status, request=request)
        error = httpx.HTTPStatusError(f"Server error '{status}' for url '{url}'", request=request, response=response)
    details = error_details(error, ErrorType.TRANSIENT, retryable=True)
    return JobExecutionLogFactory(
        job__job_type=job_type,
        event_type=EventType.ERROR,
        status=JobStatus.RETRYING,
        timestamp=NOW - timedelta(minutes=minutes_ago),
        message=f"{details['type']}: {details['message']}",
        error_details=details,
    )


def completed_attempt(*, minutes_ago: float = 1, job_type="ai_matching"):
    return JobExecutionLogFactory(
        job__job_type=job_type,
        event_type=EventType.COMPLETED,
        status=JobStatus.COMPLETED,
        timestamp=NOW - timedelta(minutes=minutes_ago),
    )


def probe_at_now(settings, *entries) -> dict:
    with time_machine.travel(NOW, tick=False):
        return probe(settings, *entries)


def crm_at_now(settings, http_server, path="/ok") -> dict:
    return probe_at_now(settings, {"name": "crm", "url": f"{http_server}{path}", "timeout": 2})["crm"]


def test_a_service_that_answers_its_health_url_but_fails_the_jobs_calls_is_critical(settings, http_server):
    """Drill: the AI service answered /health 200 while every job call got 503."""
    settings.AI_MATCHING_URL = f"{http_server}/ai"
    for _ in range(12):
        failed_call(f"{http_server}/ai/match")

    result = probe_at_now(settings)["ai_matching"]

    assert result["status"] == "critical"
    assert result["details"]["status_code"] == 200  # the probe itself went fine
    assert result["details"]["message"].startswith("HTTP 200 in ")
    assert result["details"]["message"].endswith(
        "; 12 of 12 ai_matching attempts failed calling it in the last 5 min: 100 % (latest: HTTP 503)"
    )
    assert {k: result["details"][k] for k in ("failed_calls", "attempts", "failed_calls_pct", "window_minutes")} == {
        "failed_calls": 12,
        "attempts": 12,
        "failed_calls_pct": 100.0,
        "window_minutes": 5,
    }
    assert (result["details"]["latest_error"], result["details"]["job_types"]) == ("HTTP 503", ["ai_matching"])


@pytest.mark.parametrize(
    "failed, completed, status",
    [
        (0, 10, "healthy"),
        (2, 8, "healthy"),  # 20 %
        (3, 7, "warning"),  # 30 %
        (5, 6, "warning"),  # 45 %
        (5, 5, "critical"),  # 50 %
        (4, 0, "healthy"),  # 4 attempts: too few to judge
    ],
)
def test_the_share_of_attempts_failing_on_the_service_is_graded(settings, http_server, failed, completed, status):
    """A rate, not a count: at thousands of calls a minute ten failures are noise; for a service
    called a few times they are an outage."""
    for _ in range(failed):
        failed_call(f"{http_server}/match")
    for _ in range(completed):
        completed_attempt()
    result = crm_at_now(settings, http_server)
    assert (result["status"], result["details"]["failed_calls"]) == (status, failed)


def test_a_share_just_under_a_threshold_is_not_rounded_up_to_it(settings, http_server):
    for _ in range(50):
        failed_call(f"{http_server}/match")
    for _ in range(51):
        completed_attempt()

    result = crm_at_now(settings, http_server)

    # 49.5 %: a warning, which "50 %" (the critical threshold) would contradict.
    assert result["status"] == "warning"
    expected = "; 50 of 101 ai_matching attempts failed calling it in the last 5 min: 49.5 % (latest: HTTP 503)"
    assert result["details"]["message"].endswith(expected)


def test_too_few_attempts_are_reported_but_not_judged(settings, http_server):
    for _ in range(4):
        failed_call(f"{http_server}/match")
    result = crm_at_now(settings, http_server)
    assert result["status"] == "healthy"
    assert result["details"]["message"].endswith(
        "; 4 of 4 ai_matching attempts failed calling it in the last 5 min: fewer than 5 attempts: not judged "
        "(latest: HTTP 503)"
    )


def test_with_no_failed_call_the_message_is_the_probes_alone(settings, http_server):
    completed_attempt()
    result = crm_at_now(settings, http_server)
    assert result["details"]["message"].startswith("HTTP 200 in ")
    assert "attempts" not in result["details"]["message"]
    assert result["details"]["failed_calls"] == 0
    assert "latest_error" not in result["details"]


def test_only_the_services_own_failed_calls_and_its_job_types_attempts_within_the_window_count(
    settings, http_server, closed_port
):
    failed_call(f"{http_server}/match", minutes_ago=4.9)  # counts
    failed_call(f"{http_server}/match", minutes_ago=5.1)  # before the window
    failed_call(f"http://127.0.0.1:{closed_port}/match")  # another service
    failed_call(f"{http_server}/match", job_type="import_candidates")  # counts, with its job type
    JobExecutionLogFactory(event_type=EventType.ERROR, timestamp=NOW, error_details={"message": "no service"})
    for _ in range(3):
        completed_attempt()  # ai_matching: counts
    completed_attempt(job_type="import_candidates")  # counts
    completed_attempt(minutes_ago=6)  # before the window
    completed_attempt(job_type="outreach")  # never failed calling it: not counted

    details = crm_at_now(settings, http_server)["details"]

    assert (details["failed_calls"], details["attempts"]) == (2, 2 + 1 + 3 + 1)
    assert details["job_types"] == ["ai_matching", "import_candidates"]
    assert "; 2 of 7 ai_matching, import_candidates attempts failed calling it" in details["message"]


def cancelled_before_starting(*, minutes_ago: float = 1, job_type="ai_matching"):
    """The event of a queued job cancelled (jobs.manager.cancel_job_sync): it never ran, called nothing."""
    return JobExecutionLogFactory(
        job__job_type=job_type,
        event_type=EventType.CANCELLED,
        status=JobStatus.CANCELLED,
        timestamp=NOW - timedelta(minutes=minutes_ago),
        message="cancelled by alice before attempt 1 started",
        details={"attempt": 1, "by": "alice"},
    )


def test_jobs_cancelled_before_they_ran_are_not_attempts_that_called_the_service(settings, http_server):
    """During an outage an operator cancels the queued backlog of the job type that calls the
    service: those jobs called nothing, and must not water its failures down to "healthy"."""
    for _ in range(6):
        failed_call(f"{http_server}/match")
    for _ in range(30):
        cancelled_before_starting()  # counted, they made it 7 of 38 attempts: 18 %, healthy
    # And a retryable failure whose cancel won (jobs.manager._finish_failed): one attempt, two events.
    failed = failed_call(f"{http_server}/match")
    JobExecutionLogFactory(
        job=failed.job, event_type=EventType.CANCELLED, status=JobStatus.CANCELLED, timestamp=failed.timestamp
    )

    details = crm_at_now(settings, http_server)["details"]

    assert (details["failed_calls"], details["attempts"], details["failed_calls_pct"]) == (7, 7, 100.0)
    assert "; 7 of 7 ai_matching attempts failed calling it in the last 5 min: 100 %" in details["message"]
    assert crm_at_now(settings, http_server)["status"] == "critical"


def test_the_window_and_thresholds_are_settings(settings, http_server):
    settings.HEALTH = {**settings.HEALTH, "SERVICE_FAILED_CALLS_WINDOW_MINUTES": 15}
    settings.HEALTH["THRESHOLDS"] = {**settings.HEALTH["THRESHOLDS"], "api.failed_calls_pct": (10, 90)}
    failed_call(f"{http_server}/match", minutes_ago=10)
    for _ in range(5):
        completed_attempt(minutes_ago=12)

    result = crm_at_now(settings, http_server)

    assert result["status"] == "warning"
    assert result["details"]["message"].endswith(
        "; 1 of 6 ai_matching attempts failed calling it in the last 15 min: 17 % (latest: HTTP 503)"
    )


def test_the_worse_of_the_probe_and_the_calls_decides(settings, http_server):
    for _ in range(3):  # 30 %: a warning by themselves
        failed_call(f"{http_server}/match")
    for _ in range(7):
        completed_attempt()
    result = crm_at_now(settings, http_server, "/error")
    assert result["status"] == "critical"
    assert result["details"]["message"].startswith("answered HTTP 500 in ")
    assert result["details"]["message"].endswith(
        "; 3 of 10 ai_matching attempts failed calling it in the last 5 min: 30 % (latest: HTTP 503)"
    )


def test_the_latest_failure_is_named_and_bounded(settings, http_server):
    failed_call(f"{http_server}/match", minutes_ago=3, job_type="import_candidates")
    request = httpx.Request("POST", f"{http_server}/match")
    failed_call(f"{http_server}/match", minutes_ago=2, error=httpx.ReadTimeout("timed out " * 100, request=request))
    failed_call(f"{http_server}/match", minutes_ago=4)

    details = crm_at_now(settings, http_server)["details"]

    assert details["latest_error"].startswith("ReadTimeout: timed out timed out")
    assert len(details["latest_error"]) <= 200


def test_the_failed_calls_of_every_service_are_judged_in_two_queries(
    settings, http_server, closed_port, django_assert_max_num_queries
):
    for _ in range(3):
        failed_call(f"{http_server}/match")
    failed_call(f"http://127.0.0.1:{closed_port}/match", job_type="outreach")
    completed_attempt()
    services(
        settings,
        {"name": "a", "url": f"{http_server}/ok", "timeout": 2},
        {"name": "b", "url": f"http://127.0.0.1:{closed_port}/health", "timeout": 2},
        {"name": "c", "url": "http://127.0.0.1:9/health", "timeout": 0.5},
    )
    # The failures, the attempts of their job types, and on Postgres the statement timeout, its
    # savepoint and its release.
    with django_assert_max_num_queries(5), time_machine.travel(NOW, tick=False):
        result = health_service.check_external_services_sync()
    assert [(c["details"]["failed_calls"], c["details"].get("attempts")) for c in result["components"]] == [
        (3, 4),
        (1, 1),
        (0, None),
    ]


def test_a_service_failing_the_jobs_calls_raises_a_system_health_alert(settings, http_server, machine, no_cluster):
    settings.AI_MATCHING_URL = f"{http_server}/ai"
    for _ in range(12):
        failed_call(f"{http_server}/ai/match")

    with time_machine.travel(NOW, tick=False):
        health_service.run_health_checks_sync()  # the system_health rule hears of it through health_checked

    alert = AlertHistory.objects.get(title__contains="api/ai_matching")
    assert (alert.alert_type, alert.severity) == ("system_health", "critical")
    assert alert.title == "Health check api/ai_matching is critical"
    assert (
        "12 of 12 ai_matching attempts failed calling it in the last 5 min: 100 % (latest: HTTP 503)" in alert.message
    )


def test_the_health_page_and_api_show_the_failed_calls_escaped(
    settings, http_server, client, alice, machine, no_cluster
):
    settings.AI_MATCHING_URL = f"{http_server}/ai"
    request = httpx.Request("POST", f"{http_server}/ai/match")
    script = "<script>alert('pwned')</script>"
    for _ in range(3):
        failed_call(f"{http_server}/ai/match", error=httpx.RemoteProtocolError(script, request=request))
    for _ in range(7):
        completed_attempt()
    with time_machine.travel(NOW, tick=False):
        health_service.run_health_checks_sync()
    client.force_login(alice)

    with time_machine.travel(NOW + timedelta(seconds=5), tick=False):
        page = client.get("/health/").content.decode()
        api = client.get("/api/monitoring/health").json()

    assert (
        "3 of 10 ai_matching attempts failed calling it in the last 5 min: 30 % (latest: RemoteProtocolError: &lt;script&gt;"
        in page
    )
    assert script not in page
    ai = next(c for c in api["components"] if c["metric_name"] == "ai_matching")
    assert ai["status"] == "warning"
    assert (ai["details"]["failed_calls"], ai["details"]["attempts"], ai["details"]["window_minutes"]) == (3, 10, 5)
    assert ai["details"]["latest_error"].startswith(f"RemoteProtocolError: {script}")


def test_when_the_database_cannot_count_the_calls_the_probes_still_stand(settings, http_server, monkeypatch):
    from django.db import OperationalError

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("monitoring.health.failed_calls_by_origin", database_down)
    result = crm_at_now(settings, http_server)
    assert result["status"] == "healthy"
    assert result["details"]["message"].endswith("; failed job calls not counted: OperationalError")
