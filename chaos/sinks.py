"""Where the reply service delivers during a chaos run: a local SMTP server and HTTP endpoint.

Both count deliveries by the reply's idempotency key (the mail's Message-ID, the webhook's
`Idempotency-Key` header): a key counted twice is a reply a customer received twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from escalator.demo.processes import free_port


class Deliveries:
    """Idempotency key → times delivered, shared by both sinks."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, key: str) -> None:
        """One delivery of the reply known by `key`."""
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> Counter[str]:
        """A copy of the counts."""
        with self._lock:
            return Counter(self._counts)

    @property
    def total(self) -> int:
        """Deliveries received, repeats included."""
        with self._lock:
            return sum(self._counts.values())


class _MailHandler:
    def __init__(self, deliveries: Deliveries) -> None:
        self._deliveries = deliveries

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        key = ""
        for line in raw.split(b"\r\n"):
            if not line:
                break
            if line.lower().startswith(b"message-id:"):
                key = line.split(b":", 1)[1].strip().decode("ascii", "replace")
        self._deliveries.record(key or f"no-message-id:{hash(raw)}")
        return "250 OK"


class SmtpSink:
    """An SMTP server on a free local port that accepts every mail and counts it."""

    def __init__(self, deliveries: Deliveries) -> None:
        self.port = free_port()
        self._controller = Controller(
            _MailHandler(deliveries), hostname="127.0.0.1", port=self.port
        )

    def start(self) -> None:
        """Listen."""
        self._controller.start()

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()


class HttpSink:
    """An HTTP endpoint on a free local port that answers 200 to every POST and counts it."""

    def __init__(self, deliveries: Deliveries) -> None:
        self.port = free_port()
        sink = deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                sink.record(self.headers.get("Idempotency-Key") or "no-idempotency-key")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where replies are posted."""
        return f"http://127.0.0.1:{self.port}/replies"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
