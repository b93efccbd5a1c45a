"""A small side HTTP server for processes that have no web server of their own.

Serves `/metrics` (OpenMetrics when asked), `/healthz` (the process is alive) and `/readyz`
(the process can do its job: the readiness check it is given passes). Used by the case
store projection and the SMTP and IMAP connectors; the worker (faust) and the HTTP ingress
(FastAPI) serve the same three paths from their own web servers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from metricsio import render_metrics

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Mapping[str, bool]]
"""Returns named conditions (`kafka`, `partitions_assigned`, `database`...); ready if all hold."""


class HealthServer:
    """`/metrics`, `/healthz` and `/readyz` on a port, served from a daemon thread."""

    def __init__(
        self,
        port: int,
        readiness: ReadinessCheck,
        host: str = "127.0.0.1",
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._readiness = readiness
        self._registry = registry
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes every few seconds would flood the log

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="health-server", daemon=True
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful when started on port 0)."""
        return int(self._httpd.server_address[1])

    def start(self) -> HealthServer:
        """Start serving in the background; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = render_metrics(request.headers.get("Accept"), self._registry)
            _send(request, 200, content_type, body)
        elif path == "/healthz":
            _send_json(request, 200, {"status": "ok"})
        elif path == "/readyz":
            try:
                checks = dict(self._readiness())
            except Exception as error:  # a failing check means not ready, never a crash
                log.warning("readiness check failed: %s", error)
                checks = {"check": False}
            ready = all(checks.values())
            _send_json(
                request,
                200 if ready else 503,
                {"status": "ready" if ready else "not_ready", "checks": checks},
            )
        else:
            _send_json(request, 404, {"status": "not_found"})


def _send_json(request: BaseHTTPRequestHandler, status: int, payload: object) -> None:
    _send(request, status, "application/json", json.dumps(payload).encode("utf-8"))


def _send(request: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)
