"""Real local peers for outbound tests: an HTTP server that records calls, an SMTP server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from escalator.demo.processes import free_port


@dataclass
class Call:
    """One recorded HTTP request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpPeer:
    """Records every request; answers with the next scripted status (the last one repeats)."""

    url: str
    calls: list[Call] = field(default_factory=list)
    statuses: list[int] = field(default_factory=lambda: [200])
    body: bytes = b'{"ok": true}'
    delay_seconds: float = 0.0

    def answer(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.calls)


@contextmanager
def http_peer(statuses: list[int] | None = None) -> Iterator[HttpPeer]:
    """A local HTTP server on a free port, recording calls, in a thread."""
    port = free_port()
    peer = HttpPeer(url=f"http://127.0.0.1:{port}", statuses=statuses or [200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            peer.calls.append(
                Call("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status = peer.answer()
            if peer.delay_seconds:  # the call is recorded (acted on), the answer comes late
                time.sleep(peer.delay_seconds)
            # the client may have given up waiting (a timeout test): nothing to answer then
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(peer.body)))
                self.end_headers()
                self.wfile.write(peer.body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serve_http(port, Handler):
        yield peer


@contextmanager
def serve_http(port: int, handler: type[BaseHTTPRequestHandler]) -> Iterator[None]:
    """`handler` served on 127.0.0.1:`port` from a thread, until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpPeer:
    """Mail received by a local aiosmtpd server."""

    host: str
    port: int
    mails: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    refuse_with: str | None = None
    delay_seconds: float = 0.0
    quit_delay_seconds: float = 0.0

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[Envelope, EmailMessage]]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.mails)


@contextmanager
def smtp_peer() -> Iterator[SmtpPeer]:
    """A local SMTP server (aiosmtpd) that keeps every mail it receives."""
    port = free_port()
    peer = SmtpPeer("127.0.0.1", port)

    class Handler:
        async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
            self, server: SMTP, session: Session, envelope: Envelope
        ) -> str:
            if peer.delay_seconds:
                await asyncio.sleep(peer.delay_seconds)  # a slow server, before it answers
            if peer.refuse_with:
                return peer.refuse_with
            raw = envelope.original_content or b""
            mail = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(mail, EmailMessage)
            peer.mails.append((envelope, mail))
            return "250 OK"

        async def handle_QUIT(  # noqa: N802 - aiosmtpd's hook name
            self, server: SMTP, session: Session, envelope: Envelope
        ) -> str:
            if peer.quit_delay_seconds:  # the mail is accepted; the client still waits
                await asyncio.sleep(peer.quit_delay_seconds)
            return "221 Bye"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield peer
    finally:
        controller.stop()


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll `check` until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()
