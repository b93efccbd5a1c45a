"""`escalator connect smtp`: an SMTP server (aiosmtpd) that takes mail for the configured domains.

Recipients outside `domains` are refused with 550 at RCPT, so the server is no open relay;
more than `max_recipients` in one mail get 452 (the sender sends the rest in another).
A mail is answered 250 only after Kafka acknowledged it; when Kafka cannot take it the
answer is 451 (a temporary failure), so the sending server queues and retries and nothing
is lost. Auto-replies and bounces are published tagged `auto_reply`: the pipeline never opens a case
for them (it keeps them as notes on the case they answer).

Parsing and SPF/DKIM/DMARC run on `MailWorkers` threads, never on the server's event loop,
with MIME caps (552 over them) and a time bound (451 past it). With a TLS context the
server offers STARTTLS, and may require it before MAIL.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from connectors.channels._http import MessageSink
from connectors.channels._metrics import AUTO_REPLIES, CHANNEL_REQUESTS, CONNECTOR_ERRORS
from connectors.email.auth import (
    Connection,
    MailAuthenticator,
    from_domain_of,
    with_authentication,
)
from connectors.email.parse import EmailParseError, MailTooComplexError, ParsedEmail, parse_email
from connectors.email.workers import MailBusyError, MailTimeoutError, MailWorkers
from kafkaio import PublishError, RecordsRejectedError

log = logging.getLogger(__name__)


class InboundMailHandler:
    """aiosmtpd handler: checks recipients, parses each mail and publishes it before saying 250."""

    def __init__(
        self,
        domains: Sequence[str],
        sink: MessageSink,
        max_recipients: int = 100,
        workers: MailWorkers | None = None,
        authenticator: MailAuthenticator | None = None,
    ) -> None:
        self._domains = frozenset(domain.lower().strip() for domain in domains)
        self._sink = sink
        self._max_recipients = max_recipients
        self.workers = workers or MailWorkers()
        self._authenticator = authenticator

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
        """Accept recipients in our domains; refuse the rest with 550 (no relaying).

        Past `max_recipients` the answer is 452 (RFC 5321 4.5.3.1.10): the sending server
        delivers the rest in a later transaction.
        """
        if not self.accepts(address):
            CHANNEL_REQUESTS.labels("email", "recipient_refused").inc()
            return "550 5.7.1 Relaying denied: not a mailbox of this server"
        if len(envelope.rcpt_tos) >= self._max_recipients:
            CHANNEL_REQUESTS.labels("email", "too_many_recipients").inc()
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Parse and publish the mail; 250 once Kafka has it, 451 when Kafka is unreachable."""
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw or "").encode("utf-8")
        peer = session.peer
        connection = Connection(
            ip=peer[0] if isinstance(peer, tuple) and peer else None,
            mail_from=envelope.mail_from or "",
            helo=session.host_name or None,
        )
        recipients = list(envelope.rcpt_tos)
        try:
            parsed = await self.workers.run(lambda: self.process(data, recipients, connection))
        except MailTooComplexError as exc:
            CHANNEL_REQUESTS.labels("email", "too_complex").inc()
            return f"552 5.3.4 Message refused: {exc}"
        except MailBusyError:
            CHANNEL_REQUESTS.labels("email", "busy").inc()
            return "451 4.3.2 Too many mails in progress, please retry later"
        except MailTimeoutError as exc:
            CHANNEL_REQUESTS.labels("email", "timeout").inc()
            log.warning("smtp: a mail from %s was not processed in time: %s", connection.ip, exc)
            return "451 4.3.0 Processing took too long, please retry later"
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
        except RecordsRejectedError as exc:  # can never be written: a retry would not help
            CHANNEL_REQUESTS.labels("email", "too_large").inc()
            log.warning("smtp: Kafka refuses the mail's record for good, answering 552: %s", exc)
            return "552 5.3.4 Message refused: too large to record"
        except PublishError as exc:
            CHANNEL_REQUESTS.labels("email", "kafka_unavailable").inc()
            log.warning("smtp: Kafka did not acknowledge a mail, answering 451: %s", exc)
            CONNECTOR_ERRORS.labels("smtp", "kafka_unavailable").inc()
            return "451 4.3.0 Temporary failure, please retry later"
        if parsed.is_auto_reply:
            AUTO_REPLIES.labels("smtp").inc()
        CHANNEL_REQUESTS.labels("email", "auto_reply" if parsed.is_auto_reply else "accepted").inc()
        return "250 OK"

    def process(self, raw: bytes, recipients: list[str], connection: Connection) -> ParsedEmail:
        """Parse a mail and, with an authenticator, evaluate SPF/DKIM/DMARC (blocking)."""
        parsed = parse_email(
            raw,
            envelope_recipients=recipients,
            source="smtp",
            envelope_sender=connection.mail_from,
        )
        if self._authenticator is None:
            return parsed
        auth = self._authenticator.authenticate(raw, from_domain_of(parsed), connection)
        return with_authentication(parsed, auth)


class SmtpConnector:
    """The SMTP server on its own thread and event loop (aiosmtpd's Controller)."""

    def __init__(
        self,
        domains: Sequence[str],
        sink: MessageSink,
        host: str = "127.0.0.1",
        port: int = 2525,
        max_message_bytes: int = 26_214_400,
        max_recipients: int = 100,
        tls_context: ssl.SSLContext | None = None,
        require_tls: bool = False,
        workers: MailWorkers | None = None,
        authenticator: MailAuthenticator | None = None,
    ) -> None:
        if not domains:
            raise ValueError("the SMTP server needs at least one domain to accept mail for")
        if require_tls and tls_context is None:
            raise ValueError("requiring TLS needs a certificate (a TLS context)")
        self.handler = InboundMailHandler(domains, sink, max_recipients, workers, authenticator)
        smtp_options: dict[str, Any] = {
            "data_size_limit": max_message_bytes,
            "enable_SMTPUTF8": True,
            "ident": "Escalator ESMTP",
        }
        if tls_context is not None:
            smtp_options["tls_context"] = tls_context
            smtp_options["require_starttls"] = require_tls
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
        self.handler.workers.close()


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS context for STARTTLS from a certificate chain and its key (PEM files)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context
