"""Email as a channel plugin: its settings, the inbound-parse webhook and replies by SMTP.

Mail also comes in through the SMTP server (`escalator connect smtp`) and the IMAP poller
(`escalator connect imap`), built from the same `EmailSettings`. Replies are handed to the
relay in the customer's thread: `In-Reply-To`/`References` of the customer's mail, the case
reference `[#C-…]` in the subject, a `Message-ID` stable per reply.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import httpx
from fastapi import APIRouter
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.channels._plugin import ChannelPlugin, Inbound
from connectors.email import webhook
from connectors.email.auth import MailAuthenticator, ResolverDns
from connectors.email.relay import SmtpRelay, send_mail
from connectors.outbound._headers import id_part, message_id, one_line, single_address
from connectors.outbound._model import DeliveryError, Reply


class EmailSettings(BaseSettings):
    """Mail in (inbound-parse webhook, SMTP server, IMAP) and out (the relay), `ESCALATOR_*`."""

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_", extra="ignore")

    email_webhook_secret: SecretStr | None = None
    reply_from: str | None = Field(default=None, description="From address of email replies.")
    smtp_relay_host: str | None = Field(default=None, description="Mail server replies go to.")
    smtp_relay_port: int = 25
    smtp_relay_username: str | None = None
    smtp_relay_password: SecretStr | None = None
    smtp_relay_starttls: bool = False
    smtp_domains: str = Field(
        default="", description="Comma-separated domains the SMTP server accepts mail for."
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_max_message_bytes: int = Field(default=26_214_400, ge=1024)
    smtp_max_recipients: int = Field(
        default=100, ge=1, le=1_000, description="RCPT TO per mail; past it the answer is 452."
    )
    smtp_tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate chain for STARTTLS (with ESCALATOR_SMTP_TLS_KEY).",
    )
    smtp_tls_key: Path | None = Field(default=None, description="PEM private key for STARTTLS.")
    smtp_require_tls: bool = Field(
        default=False, description="Refuse MAIL before STARTTLS (530); needs the certificate."
    )
    mail_auth: bool = Field(
        default=True, description="Evaluate SPF, DKIM and DMARC on inbound mail (metadata.auth)."
    )
    mail_dns_servers: str = Field(
        default="",
        description="Comma-separated DNS servers for mail authentication; "
        "empty: the system's resolvers.",
    )
    mail_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Time bound on parsing and authenticating one mail."
    )
    imap_host: str | None = None
    imap_port: int = 993
    imap_ssl: bool = True
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_poll_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _complete_tls(self) -> EmailSettings:
        """Refuse a half-configured STARTTLS at start rather than serving mail without it."""
        if bool(self.smtp_tls_cert) != bool(self.smtp_tls_key):
            raise ValueError("set both ESCALATOR_SMTP_TLS_CERT and ESCALATOR_SMTP_TLS_KEY")
        if self.smtp_require_tls and not self.smtp_tls_cert:
            raise ValueError("ESCALATOR_SMTP_REQUIRE_TLS needs ESCALATOR_SMTP_TLS_CERT and _KEY")
        return self

    @property
    def smtp_domain_list(self) -> list[str]:
        """The accepted SMTP domains, lowercased."""
        return [d.strip().lower() for d in self.smtp_domains.split(",") if d.strip()]

    @property
    def relay(self) -> SmtpRelay | None:
        """The relay replies and notification mails go to (None: no relay configured)."""
        if not self.smtp_relay_host:
            return None
        password = self.smtp_relay_password
        return SmtpRelay(
            host=self.smtp_relay_host,
            port=self.smtp_relay_port,
            username=self.smtp_relay_username,
            password=password.get_secret_value() if password is not None else None,
            starttls=self.smtp_relay_starttls,
        )


def mail_authenticator(settings: EmailSettings) -> MailAuthenticator | None:
    """SPF/DKIM/DMARC over DNS (ESCALATOR_MAIL_DNS_SERVERS or the system's), unless turned off."""
    if not settings.mail_auth:
        return None
    servers = [s.strip() for s in settings.mail_dns_servers.split(",") if s.strip()]
    return MailAuthenticator(ResolverDns(servers or None))


def inbound(settings: EmailSettings, context: Inbound) -> APIRouter | None:
    """The inbound-parse webhook, when its secret is set."""
    if settings.email_webhook_secret is None:
        return None
    return webhook.router(
        settings.email_webhook_secret.get_secret_value(),
        context.tolerance_seconds,
        context.sink,
        context.max_body_bytes,
        authenticator=mail_authenticator(settings),
    )


def reply_subject(reply: Reply) -> str:
    """`Re: <the customer's subject> [#C-…]`, the case reference added once.

    An acknowledgement's subject is its template's, as rendered (with the reference added).
    """
    subject = one_line(reply.subject or "") or "Your request"
    if not reply.auto_submitted and not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    case_id = one_line(reply.case_id)
    if case_id not in subject:
        subject = f"{subject} [#{case_id}]"
    return subject


class EmailSender:
    """Hands replies to the SMTP relay, in the customer's thread."""

    def __init__(self, settings: EmailSettings, _client: httpx.Client | None = None) -> None:
        self.settings = settings

    def send(self, reply: Reply) -> None:
        """Hand the reply's mail to the relay, or raise DeliveryError."""
        relay = self.settings.relay
        if relay is None:
            raise DeliveryError("not_configured", "set ESCALATOR_SMTP_RELAY_HOST", True)
        send_mail(relay, self.email_message(reply))

    def email_message(self, reply: Reply) -> EmailMessage:
        """The reply as a mail in the customer's thread (what `send` hands the relay)."""
        reply_from = self.settings.reply_from
        if not reply_from:
            raise DeliveryError("not_configured", "set ESCALATOR_REPLY_FROM", permanent=True)
        recipient = single_address(reply.recipient)
        domain = reply_from.rpartition("@")[2] or "escalator"
        mail = EmailMessage()
        mail["From"] = reply_from
        mail["To"] = recipient
        mail["Subject"] = reply_subject(reply)
        mail["Date"] = formatdate(reply.at.timestamp(), usegmt=True)
        # the same reply always has the same id: a resent copy is recognisably the same mail
        mail["Message-ID"] = f"<{id_part(reply.action_id)}.{id_part(reply.case_id)}@{domain}>"
        # only real Message-IDs (a mail without one is known by a content hash instead)
        in_reply_to = message_id(reply.in_reply_to)
        ids = [message_id(ref) for ref in (reply.thread_ref, reply.in_reply_to)]
        references = [ref for ref in ids if ref]
        if in_reply_to:
            mail["In-Reply-To"] = in_reply_to
        if references:
            mail["References"] = " ".join(dict.fromkeys(references))
        mail["X-Escalator-Case"] = one_line(reply.case_id)
        if reply.auto_submitted:  # RFC 3834: a responder's message, never to be answered
            mail["Auto-Submitted"] = "auto-replied"
            mail["X-Auto-Response-Suppress"] = "All"
        mail.set_content(reply.text)
        return mail


PLUGIN = ChannelPlugin(
    name="email",
    channels=("email",),
    settings=EmailSettings,
    inbound=inbound,
    outbound=EmailSender,
)
"""Email as a channel plugin."""
