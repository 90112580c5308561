"""check_external_services against real local HTTP servers: up, slow, hanging, failing, closed."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from monitoring.health import external_services, health_service

pytestmark = pytest.mark.django_db


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
