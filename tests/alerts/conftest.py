import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture(autouse=True)
def alert_settings(settings):
    """Known routing and timings, whatever the environment running the tests says."""
    settings.SITE_URL = "https://monitor.example.com"
    settings.ALERTS = {
        "RECIPIENTS": {
            "info": [],
            "warning": ["ops@example.com"],
            "error": ["ops@example.com"],
            "critical": ["ops@example.com", "oncall@example.com"],
        },
        "ESCALATION_RECIPIENTS": {
            "info": [],
            "warning": [],
            "error": ["lead@example.com"],
            "critical": ["cto@example.com"],
        },
        "ESCALATE_AFTER_MINUTES": {"info": 0, "warning": 240, "error": 60, "critical": 15},
        "REPEAT_AFTER_MINUTES": 60,
        "ACKNOWLEDGE_MINUTES": 60,
        "FLAP_MINUTES": 15,
        "RULES": {},
        "DELIVERY_TIMEOUT": 0.5,
        "DELIVERY_MAX_ATTEMPTS": 3,
        "DELIVERY_BASE_DELAY": 30.0,
        "DELIVERY_MAX_DELAY": 600.0,
    }
    return settings.ALERTS


@pytest.fixture
def sync_tasks(monkeypatch):
    """django-q2 runs each task in-process at async_task() (its `sync` mode): a delivery queued
    after commit is attempted right then, through the real task function."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def deliveries_run(sync_tasks, django_capture_on_commit_callbacks):
    """Context manager: deliveries queued inside it are attempted when it exits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


class WebhookServer:
    """A real HTTP server on localhost. Each request takes the next planned answer:
    a status code, or "hang" (no answer until the test ends, so the client times out)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.plan: list = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append({"path": self.path, "json": json.loads(body), "headers": dict(self.headers)})
                answer = server.plan.pop(0) if server.plan else 200
                if answer == "hang":
                    server.release.wait(10)
                    return
                self.send_response(answer)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if answer < 400 else b"upstream exploded")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook_server():
    with WebhookServer() as server:
        yield server
