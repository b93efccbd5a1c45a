"""One sender per channel: deliver an agent reply where the customer wrote.

| channel | how |
|---|---|
| `email` | SMTP relay; `In-Reply-To`/`References` of the customer's mail, `[#C-…]` in the subject |
| `sms`, `whatsapp` | Twilio-compatible `POST …/Accounts/{sid}/Messages.json` |
| `slack` | `chat.postMessage` in the customer's thread |
| `community` | Discourse `POST /posts.json` in the topic |
| anything else | the generic reply webhook, signed like the inbound one (HMAC-SHA256) |

Every reply carries its idempotency key where the far end can see it: the mail's stable
`Message-ID`, the reply webhook's `Idempotency-Key`, Slack message metadata (Twilio and
Discourse take none). Text from customers and agents enters headers only through
`_headers`, so it can never add a header or a recipient. A failure raises `DeliveryError`:
permanent for answers that will not change on retry (4xx, SMTP 5xx), transient otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx

from connectors.outbound._headers import header_token, id_part, message_id, one_line, single_address
from connectors.outbound._model import DeliveryError, Reply

PHONE_CHANNELS = frozenset({"sms", "whatsapp"})


@dataclass(frozen=True)
class SmtpRelay:
    """The mail server replies and notification mails are handed to."""

    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class OutboundConfig:
    """Where and how replies go out, per channel; None leaves a channel unconfigured."""

    reply_from: str | None = None
    smtp: SmtpRelay | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    slack_bot_token: str | None = None
    slack_api_url: str = "https://slack.com/api"
    discourse_url: str | None = None
    discourse_api_key: str | None = None
    discourse_api_username: str = "system"
    reply_webhook_url: str | None = None
    reply_webhook_secret: str | None = None


def check_response(response: httpx.Response) -> httpx.Response:
    """The response if 2xx; else a DeliveryError (4xx permanent, except 408 and 429)."""
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = f"HTTP {status}: {response.text[:300]}"
    if status in (408, 429):
        raise DeliveryError(f"http_{status}", detail)
    if status >= 500:
        raise DeliveryError("http_5xx", detail)
    raise DeliveryError("http_4xx", detail, permanent=True)


def post(
    client: httpx.Client, url: str, **kwargs: Any
) -> httpx.Response:  # one place that turns transport errors into transient failures
    """POST and check; connection problems and timeouts are transient failures.

    A failure before the request left (no connection) is certain; one after it may have
    reached the provider (read timeout, dropped connection) is `in_doubt`.
    """
    try:
        return check_response(client.post(url, **kwargs))
    except httpx.TransportError as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise DeliveryError("connection", detail, in_doubt=not isinstance(exc, _NOT_SENT)) from exc


_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)
"""Transport errors raised before any byte of the request reached the provider."""


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """`X-Escalator-Timestamp` and `X-Escalator-Signature` as the inbound webhook checks them."""
    timestamp = str(int(now if now is not None else time.time()))
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "X-Escalator-Timestamp": timestamp,
        "X-Escalator-Signature": f"sha256={digest.hexdigest()}",
    }


def send_mail(relay: SmtpRelay, mail: EmailMessage) -> None:
    """Hand a mail to the relay; 4xx answers and connection trouble are transient.

    Trouble before the mail's data went out is certain; a connection lost or timed out while
    the relay had the data is `in_doubt` (the relay may have accepted it).
    """
    try:
        smtp = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_seconds)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError("connection", f"{type(exc).__name__}: {exc}") from exc
    try:
        try:
            if relay.starttls:
                smtp.starttls()
            if relay.username and relay.password:
                smtp.login(relay.username, relay.password)
        except smtplib.SMTPResponseException as exc:
            raise _smtp_answer(exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError("connection", f"{type(exc).__name__}: {exc}") from exc
        try:
            # the envelope names exactly the To addresses (never Cc/Bcc a header might add)
            smtp.send_message(mail, to_addrs=[a.addr_spec for a in mail["To"].addresses])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            temporary = all(400 <= code < 500 for code in codes)
            reason = "smtp_4xx" if temporary else "smtp_5xx"
            detail = f"recipients refused: {exc.recipients}"
            raise DeliveryError(reason, detail, not temporary) from exc
        except smtplib.SMTPResponseException as exc:
            raise _smtp_answer(exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise DeliveryError("connection", detail, in_doubt=True) from exc
    finally:
        # QUIT without waiting for its answer: the mail is accepted or not by now, and every
        # moment between the relay's acceptance and our record of it is a window for doubt
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.putcmd("quit")
        smtp.close()


def _smtp_answer(exc: smtplib.SMTPResponseException) -> DeliveryError:
    """The relay said no: 4xx is worth another try, 5xx is final."""
    temporary = 400 <= exc.smtp_code < 500
    reason = "smtp_4xx" if temporary else "smtp_5xx"
    return DeliveryError(reason, f"{exc.smtp_code} {exc.smtp_error!r}", not temporary)


def reply_subject(reply: Reply) -> str:
    """`Re: <the customer's subject> [#C-…]`, the case reference added once."""
    subject = one_line(reply.subject or "") or "Your request"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    case_id = one_line(reply.case_id)
    if case_id not in subject:
        subject = f"{subject} [#{case_id}]"
    return subject


class ChannelSenders:
    """Delivers a reply on its channel with the configured credentials."""

    def __init__(self, config: OutboundConfig, client: httpx.Client) -> None:
        self.config = config
        self.client = client

    def send(self, reply: Reply) -> None:
        """Deliver one reply or raise DeliveryError."""
        if not reply.text.strip():
            raise DeliveryError("empty", "the reply has no text", permanent=True)
        if reply.channel == "email":
            self._email(reply)
        elif reply.channel in PHONE_CHANNELS:
            self._twilio(reply)
        elif reply.channel == "slack":
            self._slack(reply)
        elif reply.channel == "community":
            self._discourse(reply)
        else:
            self._webhook(reply)

    def email_message(self, reply: Reply) -> EmailMessage:
        """The reply as a mail in the customer's thread (what `_email` sends)."""
        config = self.config
        if not config.reply_from:
            raise DeliveryError("not_configured", "set ESCALATOR_REPLY_FROM", permanent=True)
        recipient = single_address(reply.recipient)
        domain = config.reply_from.rpartition("@")[2] or "escalator"
        mail = EmailMessage()
        mail["From"] = config.reply_from
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
        mail.set_content(reply.text)
        return mail

    def _email(self, reply: Reply) -> None:
        if self.config.smtp is None:
            raise DeliveryError("not_configured", "set ESCALATOR_SMTP_RELAY_HOST", True)
        send_mail(self.config.smtp, self.email_message(reply))

    def _twilio(self, reply: Reply) -> None:
        config = self.config
        if not (config.twilio_account_sid and config.twilio_auth_token):
            raise DeliveryError(
                "not_configured", "set ESCALATOR_TWILIO_ACCOUNT_SID and _AUTH_TOKEN", True
            )
        ours = (reply.thread_ref or "").partition(">")[2]  # thread_ref is "<customer>><ours>"
        if not (reply.recipient and ours):
            raise DeliveryError("no_recipient", "no customer or company number on the case", True)
        prefix = "whatsapp:" if reply.channel == "whatsapp" else ""
        url = (
            f"{config.twilio_api_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{config.twilio_account_sid}/Messages.json"
        )
        post(
            self.client,
            url,
            data={"To": prefix + reply.recipient, "From": prefix + ours, "Body": reply.text},
            auth=(config.twilio_account_sid, config.twilio_auth_token),
        )

    def _slack(self, reply: Reply) -> None:
        config = self.config
        if not config.slack_bot_token:
            raise DeliveryError("not_configured", "set ESCALATOR_SLACK_BOT_TOKEN", True)
        channel, _, thread_ts = (reply.thread_ref or "").partition(":")
        if not channel:
            raise DeliveryError("no_recipient", "no Slack channel on the case", True)
        body: dict[str, Any] = {
            "channel": channel,
            "text": reply.text,
            # Slack has no idempotency key; the metadata makes our reply findable in the thread
            "metadata": {
                "event_type": "escalator_reply",
                "event_payload": {"idempotency_key": reply.key, "case_id": reply.case_id},
            },
        }
        if thread_ts:
            body["thread_ts"] = thread_ts
        answer = post(
            self.client,
            f"{config.slack_api_url.rstrip('/')}/chat.postMessage",
            json=body,
            headers={"Authorization": f"Bearer {config.slack_bot_token}"},
        )
        result = _json(answer)
        if not result.get("ok"):
            error = str(result.get("error") or "unknown")
            transient = error in {"ratelimited", "service_unavailable", "internal_error"}
            raise DeliveryError("api_error", f"Slack: {error}", permanent=not transient)

    def _discourse(self, reply: Reply) -> None:
        config = self.config
        if not (config.discourse_url and config.discourse_api_key):
            raise DeliveryError("not_configured", "set ESCALATOR_DISCOURSE_URL and _API_KEY", True)
        topic = (reply.thread_ref or "").strip()
        if not topic.isdigit():
            raise DeliveryError("no_recipient", f"no forum topic on the case ({topic!r})", True)
        post(
            self.client,
            f"{config.discourse_url.rstrip('/')}/posts.json",
            json={"topic_id": int(topic), "raw": reply.text},
            headers={
                "Api-Key": config.discourse_api_key,
                "Api-Username": config.discourse_api_username,
            },
        )

    def _webhook(self, reply: Reply) -> None:
        config = self.config
        if not (config.reply_webhook_url and config.reply_webhook_secret):
            raise DeliveryError(
                "not_configured",
                f"no sender for channel {reply.channel!r}: set ESCALATOR_REPLY_WEBHOOK_URL "
                "and ESCALATOR_REPLY_WEBHOOK_SECRET",
                permanent=True,
            )
        body = json.dumps(reply_document(reply), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": header_token(reply.key),
            **signed_headers(config.reply_webhook_secret, body),
        }
        post(self.client, config.reply_webhook_url, content=body, headers=headers)


def reply_document(reply: Reply) -> dict[str, Any]:
    """The JSON the reply webhook receives."""
    return {
        "idempotency_key": reply.key,
        "case_id": reply.case_id,
        "channel": reply.channel,
        "recipient": reply.recipient,
        "thread_ref": reply.thread_ref,
        "in_reply_to": reply.in_reply_to,
        "subject": reply.subject,
        "text": reply.text,
        "agent_id": reply.agent_id,
        "sent_at": reply.at.isoformat(),
    }


def _json(response: httpx.Response) -> Mapping[str, Any]:
    try:
        document = response.json()
    except ValueError as exc:
        raise DeliveryError("api_error", f"not JSON: {response.text[:200]}") from exc
    return document if isinstance(document, dict) else {}
