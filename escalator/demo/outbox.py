"""The demo's outbox: where its reply service delivers, and a customer who escalates.

A local mail server takes what the reply service sends by email (each mail kept as an
`.eml` file) and a local reply webhook takes every other channel (one JSON line each), both
under `outbox/` in the demo's folder. Acknowledgements (`Auto-Submitted: auto-replied`, or
`auto_submitted` in the webhook's JSON) are counted, and every `escalate_every`-th one's
"still not solved?" link is used by a simulated customer, as a real one would from the mail.
The webhook also stands in for the on-call pagers' Slack incoming webhooks (`/pages/<pager>`):
each page is one JSON line of `pages.jsonl`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as mail_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from escalator.demo.processes import free_port

__all__ = ["DemoOutbox"]

log = logging.getLogger(__name__)

PAGES_PATH = "/pages/"
"""The prefix of the pagers' incoming-webhook paths on the webhook."""

_LINK = re.compile(r"https?://\S+/v1/escalate/[A-Za-z0-9_.-]+")


class DemoOutbox:
    """A local SMTP server and reply webhook that keep what is sent, in `directory`."""

    def __init__(self, directory: Path, escalate_every: int = 4) -> None:
        self.directory = directory
        self.escalate_every = escalate_every
        self.smtp_port = free_port()
        self.webhook_port = free_port()
        self.acknowledgements = 0
        self.replies = 0
        self.customer_escalations = 0
        self.pages = 0
        self._lock = threading.Lock()
        self._mails = 0
        self._smtp: Controller | None = None
        self._webhook: ThreadingHTTPServer | None = None

    @property
    def webhook_url(self) -> str:
        """Where the reply service posts replies on channels other than email."""
        return f"http://127.0.0.1:{self.webhook_port}/replies"

    def pager_url(self, pager: str) -> str:
        """The incoming-webhook URL a Slack pager of the rules posts its pages to."""
        return f"http://127.0.0.1:{self.webhook_port}{PAGES_PATH}{pager}"

    def keep_page(self, pager: str, document: dict[str, Any]) -> None:
        """Keep one page posted to a pager's incoming webhook."""
        with self._lock, (self.directory / "pages.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps({"pager": pager, **document}) + "\n")
            self.pages += 1

    def reply_service_env(self) -> dict[str, str]:
        """The settings that point `escalator connect replies` at this outbox."""
        return {
            "ESCALATOR_REPLY_FROM": "help@demo.escalator.test",
            "ESCALATOR_SMTP_RELAY_HOST": "127.0.0.1",
            "ESCALATOR_SMTP_RELAY_PORT": str(self.smtp_port),
            "ESCALATOR_REPLY_WEBHOOK_URL": self.webhook_url,
            "ESCALATOR_REPLY_WEBHOOK_SECRET": "demo-outbox",
            "ESCALATOR_REPLIES_FROM_BEGINNING": "true",
        }

    def start(self) -> None:
        """Start the mail server and the webhook (each in its own thread)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._smtp = Controller(_MailHandler(self), hostname="127.0.0.1", port=self.smtp_port)
        self._smtp.start()
        self._webhook = ThreadingHTTPServer(("127.0.0.1", self.webhook_port), _webhook(self))
        threading.Thread(target=self._webhook.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop both servers."""
        if self._smtp is not None:
            self._smtp.stop()
        if self._webhook is not None:
            self._webhook.shutdown()
            self._webhook.server_close()

    def keep_mail(self, raw: bytes) -> None:
        """Keep one mail; count and perhaps escalate an acknowledgement."""
        with self._lock:
            self._mails += 1
            number = self._mails
        (self.directory / f"{number:05d}.eml").write_bytes(raw)
        mail = message_from_bytes(raw, _class=EmailMessage, policy=mail_policy)
        acknowledgement = mail.get("Auto-Submitted") == "auto-replied"
        body = mail.get_body(("plain",))
        text = body.get_content() if isinstance(body, EmailMessage) else ""
        self._count(acknowledgement, str(text))

    def keep_webhook(self, document: dict[str, Any]) -> None:
        """Keep one webhook delivery; count and perhaps escalate an acknowledgement."""
        with self._lock, (self.directory / "webhook.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(document) + "\n")
        self._count(document.get("auto_submitted") is True, str(document.get("text") or ""))

    def _count(self, acknowledgement: bool, text: str) -> None:
        with self._lock:
            if not acknowledgement:
                self.replies += 1
                return
            self.acknowledgements += 1
            escalate = self.acknowledgements % self.escalate_every == 0
        link = _LINK.search(text)
        if escalate and link is not None:
            threading.Thread(target=self._escalate, args=(link.group(0),), daemon=True).start()

    def _escalate(self, link: str) -> None:
        """The customer clicks "still not solved?" and sends the form."""
        try:
            answer = httpx.post(
                link, data={"text": "Still not solved (a demo customer)"}, timeout=30.0
            )
        except httpx.HTTPError as exc:
            log.warning("demo customer could not escalate: %s", exc)
            return
        if answer.status_code == 200:
            with self._lock:
                self.customer_escalations += 1


class _MailHandler:
    def __init__(self, outbox: DemoOutbox) -> None:
        self.outbox = outbox

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        self.outbox.keep_mail(raw)
        return "250 OK"


def _webhook(outbox: DemoOutbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(min(length, 1_000_000))
            try:
                document = json.loads(body)
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            if isinstance(document, dict) and self.path.startswith(PAGES_PATH):
                outbox.keep_page(self.path.removeprefix(PAGES_PATH), document)
            elif isinstance(document, dict):
                outbox.keep_webhook(document)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return  # the demo's screen is the tally

    return Handler
