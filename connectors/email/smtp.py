"""`escalator connect smtp`: an SMTP server (aiosmtpd) that takes mail for the configured domains.

Recipients outside `domains` are refused with 550 at RCPT, so the server is no open relay.
A mail is answered 250 only after Kafka acknowledged it; when Kafka cannot take it the
answer is 451 (a temporary failure), so the sending server queues and retries and nothing
is lost. Auto-replies and bounces are published tagged `auto_reply`: the pipeline never opens a case
for them (it keeps them as notes on the case they answer).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from connectors.channels._http import MessageSink
from connectors.channels._metrics import AUTO_REPLIES, CHANNEL_REQUESTS, CONNECTOR_ERRORS
from connectors.email.parse import EmailParseError, parse_email
from connectors.publisher import PublishError

log = logging.getLogger(__name__)


class InboundMailHandler:
    """aiosmtpd handler: checks recipients, parses each mail and publishes it before saying 250."""

    def __init__(self, domains: Sequence[str], sink: MessageSink) -> None:
        self._domains = frozenset(domain.lower().strip() for domain in domains)
        self._sink = sink

    def accepts(self, address: str) -> bool:
        """Whether `address` is in one of the configured domains."""
        _local, at, domain = address.rpartition("@")
        return bool(at) and domain.lower().rstrip(".") in self._domains

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept recipients in our domains; refuse the rest with 550 (no relaying)."""
        if not self.accepts(address):
            CHANNEL_REQUESTS.labels("email", "recipient_refused").inc()
            return "550 5.7.1 Relaying denied: not a mailbox of this server"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Parse and publish the mail; 250 once Kafka has it, 451 when Kafka is unreachable."""
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw or "").encode("utf-8")
        try:
            parsed = parse_email(data, envelope_recipients=list(envelope.rcpt_tos), source="smtp")
        except EmailParseError as exc:
            CHANNEL_REQUESTS.labels("email", "malformed").inc()
            return f"554 5.6.0 Message refused: {exc}"
        except Exception:  # a mail the contract cannot hold must not crash the server
            log.exception("smtp: could not turn a mail into a message")
            CONNECTOR_ERRORS.labels("smtp", "conversion_failed").inc()
            CHANNEL_REQUESTS.labels("email", "malformed").inc()
            return "554 5.6.0 Message refused: it cannot be processed"
        try:
            await self._sink.publish([parsed.message])
        except PublishError as exc:
            CHANNEL_REQUESTS.labels("email", "kafka_unavailable").inc()
            log.warning("smtp: Kafka did not acknowledge a mail, answering 451: %s", exc)
            CONNECTOR_ERRORS.labels("smtp", "kafka_unavailable").inc()
            return "451 4.3.0 Temporary failure, please retry later"
        if parsed.is_auto_reply:
            AUTO_REPLIES.labels("smtp").inc()
        CHANNEL_REQUESTS.labels("email", "auto_reply" if parsed.is_auto_reply else "accepted").inc()
        return "250 OK"


class SmtpConnector:
    """The SMTP server on its own thread and event loop (aiosmtpd's Controller)."""

    def __init__(
        self,
        domains: Sequence[str],
        sink: MessageSink,
        host: str = "127.0.0.1",
        port: int = 2525,
        max_message_bytes: int = 26_214_400,
    ) -> None:
        if not domains:
            raise ValueError("the SMTP server needs at least one domain to accept mail for")
        self.handler = InboundMailHandler(domains, sink)
        smtp_options: dict[str, Any] = {
            "data_size_limit": max_message_bytes,
            "enable_SMTPUTF8": True,
            "ident": "Escalator ESMTP",
        }
        self._controller = Controller(
            self.handler, hostname=host, port=port, server_hostname=host, **smtp_options
        )

    @property
    def address(self) -> tuple[str, int]:
        """Host and port the server listens on."""
        return self._controller.hostname, self._controller.port

    def start(self) -> None:
        """Start serving (returns once the server answers)."""
        self._controller.start()

    def stop(self) -> None:
        """Stop serving."""
        self._controller.stop()
