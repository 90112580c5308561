"""A notification webhook under the test's control: up, down (connection refused), slow or failing."""

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.reliability.nodes import free_port


@dataclass
class Request:
    at: float  # time.monotonic() of its arrival
    mode: str  # how it was answered
    body: dict


class Webhook:
    """An HTTP server in a thread of the test process. `mode`: "ok" (200), "error" (500) or
    "slow" (answers 200 after `slow_seconds`, beyond the sender's timeout); `down()` closes the
    port (connection refused) and `up()` opens it again."""

    def __init__(self, slow_seconds: float = 10.0):
        self.port = free_port()
        self.mode = "ok"
        self.slow_seconds = slow_seconds
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._released = threading.Event()  # lets slow requests finish at once when the test ends

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alerts"

    def up(self) -> "Webhook":
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                mode = webhook.mode
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with webhook._lock:
                    webhook.requests.append(Request(time.monotonic(), mode, body))
                if mode == "slow":
                    webhook._released.wait(webhook.slow_seconds)
                status = 500 if mode == "error" else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"internal error" if status == 500 else b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (its timeout): that is the point of "slow"

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True).start()
        return self

    def down(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self._released.set()
        self.down()

    def received(self, mode: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if mode is None or r.mode == mode]
