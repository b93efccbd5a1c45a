"""`POST /v1/channels/email/inbound`: mail posted over HTTP by an inbound-parse provider.

Three shapes are accepted, each authenticated with `ESCALATOR_EMAIL_WEBHOOK_SECRET`:

- the raw mail as the body (`Content-Type: message/rfc822`), signed like the generic webhook
  (`X-Escalator-Timestamp`, `X-Escalator-Signature`);
- a Mailgun route forwarding the MIME (`body-mime` form field), signed by Mailgun's
  `timestamp`, `token` and `signature` fields (the secret is the webhook signing key);
- SendGrid Inbound Parse with "POST the raw, full MIME message" (`email` form field), with
  the secret as the HTTP Basic password in the URL SendGrid calls.

Auto-replies and bounces are published tagged `auto_reply` (counted, answered 200) so they
never open a case. Parsing and DKIM/DMARC run on `MailWorkers` threads, off the ingress's
event loop, with the MIME caps (413 over them). The SMTP envelope the provider saw is used
where it is posted: Mailgun's `sender`, SendGrid's `envelope` (its `from`) and `sender_ip`
(so SPF is evaluated for SendGrid; for the raw shape and Mailgun it is `none`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response

from connectors.channels._http import MessageSink, Outcome, Rejection, handle
from connectors.channels._metrics import AUTO_REPLIES
from connectors.channels._replay import body_digest
from connectors.channels._signing import hmac_sha256_hex, require_fresh, require_signature
from connectors.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from connectors.channels.webhook import verify as verify_signed_body
from connectors.email.auth import (
    Connection,
    MailAuthenticator,
    from_domain_of,
    with_authentication,
)
from connectors.email.parse import EmailParseError, MailTooComplexError, ParsedEmail, parse_email
from connectors.email.workers import MailBusyError, MailTimeoutError, MailWorkers

PATH = "/v1/channels/email/inbound"


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's `signature` field: hex HMAC-SHA256(key, timestamp + token)."""
    return hmac_sha256_hex(signing_key, (timestamp + token).encode("utf-8"))


def form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data or urlencoded body (parsed with the `email` package)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise Rejection(400, "malformed", f"the form is not UTF-8: {exc}") from exc
        return {name: value.encode("utf-8") for name, value in pairs}
    if not content_type.startswith("multipart/form-data"):
        raise Rejection(400, "unsupported_content_type", f"cannot read {content_type or 'none'}")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    form = BytesParser(policy=policy.default).parsebytes(head + body)
    if not form.is_multipart():
        raise Rejection(400, "malformed", "the multipart body has no parts")
    fields: dict[str, bytes] = {}
    for part in form.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


def _basic_auth_password(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


@dataclass(frozen=True)
class Delivery:
    """A posted mail and what the provider said of its SMTP envelope (None: nothing)."""

    raw: bytes
    connection: Connection | None = None


def _sendgrid_connection(fields: dict[str, bytes]) -> Connection | None:
    """SendGrid's `envelope` (JSON, its `from`) and `sender_ip`, when posted."""
    try:
        envelope = json.loads(fields.get("envelope", b"{}").decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        envelope = {}
    mail_from = envelope.get("from") if isinstance(envelope, dict) else None
    ip = fields.get("sender_ip", b"").decode("ascii", "replace").strip()
    if not isinstance(mail_from, str) and not ip:
        return None
    return Connection(ip=ip or None, mail_from=mail_from if isinstance(mail_from, str) else "")


def authenticated_mail(
    request_headers: dict[str, str], body: bytes, secret: str, tolerance: int
) -> bytes:
    """The raw mail of a request, once its sender proved it knows the secret; 401 otherwise."""
    return authenticated_delivery(request_headers, body, secret, tolerance).raw


def authenticated_delivery(
    request_headers: dict[str, str], body: bytes, secret: str, tolerance: int
) -> Delivery:
    """The posted mail and its envelope, once the sender proved it knows the secret."""
    content_type = request_headers.get("content-type", "").lower()
    if content_type.startswith("message/rfc822"):
        verify_signed_body(
            secret,
            request_headers.get(SIGNATURE_HEADER.lower()),
            request_headers.get(TIMESTAMP_HEADER.lower()),
            body,
            tolerance,
        )
        return Delivery(body)
    password = _basic_auth_password(request_headers.get("authorization"))
    fields = form_fields(content_type, body)
    if "body-mime" in fields:
        timestamp = fields.get("timestamp", b"").decode("ascii", "replace")
        token = fields.get("token", b"").decode("ascii", "replace")
        require_signature(
            fields.get("signature", b"").decode("ascii", "replace"),
            mailgun_signature(secret, timestamp, token),
            "Mailgun signature",
        )
        require_fresh(timestamp, "Mailgun timestamp", tolerance)
        sender = fields.get("sender")
        connection = Connection(mail_from=sender.decode("utf-8", "replace")) if sender else None
        return Delivery(fields["body-mime"], connection)
    if password is None or not hmac.compare_digest(password.encode(), secret.encode()):
        raise Rejection(401, "unauthorized", "sign the request or use the secret as Basic password")
    if "email" not in fields:
        raise Rejection(400, "malformed", "no raw mail: expected an `email` or `body-mime` field")
    return Delivery(fields["email"], _sendgrid_connection(fields))


def delivery_name(content_type: str, body: bytes) -> str:
    """What names a delivery for the replay window: Mailgun's signed one-time token, else the
    body's digest (the signed raw mail cannot change; a SendGrid form has no signature).
    """
    content_type = content_type.lower()
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        fields = form_fields(content_type, body)
        if "body-mime" in fields and fields.get("token"):
            return "mailgun:" + fields["token"].decode("ascii", "replace")
    return body_digest(body)


def router(
    secret: str,
    tolerance_seconds: int,
    sink: MessageSink,
    max_body_bytes: int,
    authenticator: MailAuthenticator | None = None,
    workers: MailWorkers | None = None,
) -> APIRouter:
    """The inbound-parse webhook route."""
    api = APIRouter()
    pool = workers or MailWorkers()

    def process(delivery: Delivery) -> ParsedEmail:
        raw, connection = delivery.raw, delivery.connection
        mail_from = connection.mail_from if connection else None
        parsed = parse_email(raw, source="webhook", envelope_sender=mail_from)
        if authenticator is None:
            return parsed
        auth = authenticator.authenticate(raw, from_domain_of(parsed), connection)
        return with_authentication(parsed, auth)

    async def verify_and_normalise(request: Request, body: bytes) -> Outcome:
        delivery = authenticated_delivery(dict(request.headers), body, secret, tolerance_seconds)
        try:
            parsed = await pool.run(lambda: process(delivery))
        except MailTooComplexError as exc:
            raise Rejection(413, "too_complex", str(exc)) from exc
        except (MailBusyError, MailTimeoutError) as exc:
            raise Rejection(503, "busy", str(exc)) from exc
        except EmailParseError as exc:
            raise Rejection(400, "malformed", str(exc)) from exc
        if parsed.is_auto_reply:
            AUTO_REPLIES.labels("webhook").inc()
        name = delivery_name(request.headers.get("content-type", ""), body)
        return Outcome(messages=[parsed.message], delivery_id=name)

    @api.post(PATH)
    async def email_inbound(request: Request) -> Response:
        """Receive one mail from an inbound-parse provider."""
        return await handle(request, "email", sink, max_body_bytes, verify_and_normalise)

    return api
