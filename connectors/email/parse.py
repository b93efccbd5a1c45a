"""Parse raw RFC 5322 mail into the inbound message contract (`email` package, modern policy).

Handles multipart and HTML-only mail, any charset, quoted-reply and signature stripping
(the full body is kept in `metadata.full_body`), threading headers (`thread_ref` is the
root of `References`), attachment metadata, and recognises auto-replies and bounces so
they are tagged (`metadata.auto_reply`, `metadata.tags`) and never open a case.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from connectors.email._text import html_to_text, strip_reply
from schemas import Attachment, CustomerAttributes, InboundMessage
from schemas._inbound import MAX_TEXT_LENGTH

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


class EmailParseError(ValueError):
    """The bytes are not a usable mail (for example: no sender address)."""


@dataclass(frozen=True)
class ParsedEmail:
    """A parsed mail: the contract message and, if it is automatic, why."""

    message: InboundMessage
    auto_reply_reason: str | None

    @property
    def is_auto_reply(self) -> bool:
        """True for auto-replies, bounces and bulk mail: these must never open a case."""
        return self.auto_reply_reason is not None


def parse_email(
    raw: bytes, envelope_recipients: list[str] | None = None, source: str = "smtp"
) -> ParsedEmail:
    """Parse raw mail bytes into an `InboundMessage` on channel `email`.

    `envelope_recipients` (the SMTP RCPT TO addresses) and `source` (smtp, imap, webhook)
    are recorded in metadata. Raises EmailParseError when the mail has no sender.
    """
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(mail, EmailMessage):  # policy.default always gives EmailMessage
        raise EmailParseError("not a mail message")
    name, address = parseaddr(_header(mail, "From"))
    if "@" not in address:
        raise EmailParseError("the mail has no From address")
    full_body = _body_text(mail)
    message_id = _first_id(_header(mail, "Message-ID"))
    references = _MESSAGE_ID.findall(_header(mail, "References"))
    in_reply_to = _first_id(_header(mail, "In-Reply-To"))
    thread_root = references[0] if references else (in_reply_to or message_id)
    auto_reason = auto_reply_reason(mail)
    metadata: dict[str, Any] = {
        "source": source,
        "full_body": full_body[:MAX_TEXT_LENGTH],
        "to": [addr for _name, addr in getaddresses([_header(mail, "To")]) if addr],
        "cc": [addr for _name, addr in getaddresses([_header(mail, "Cc")]) if addr],
    }
    if message_id:
        metadata["message_id"] = message_id
    if references:
        metadata["references"] = references
    if envelope_recipients:
        metadata["envelope_recipients"] = envelope_recipients
    if auto_reason:
        metadata["auto_reply"] = True
        metadata["auto_reply_reason"] = auto_reason
        metadata["tags"] = ["auto_reply"]
    message = InboundMessage(
        channel="email",
        external_id=message_id or f"sha256:{hashlib.sha256(raw).hexdigest()}",
        sender=address.lower(),
        text=strip_reply(full_body)[:MAX_TEXT_LENGTH],
        sent_at=_sent_at(mail),
        subject=(_header(mail, "Subject") or None),
        thread_ref=thread_root[:1024] if thread_root else None,
        in_reply_to=in_reply_to[:1024] if in_reply_to else None,
        customer=CustomerAttributes(email=address.lower(), name=name or None),
        attachments=_attachments(mail),
        metadata=metadata,
    )
    return ParsedEmail(message=message, auto_reply_reason=auto_reason)


def auto_reply_reason(mail: EmailMessage) -> str | None:
    """Why this mail is automatic (RFC 3834, common vendor headers, bounces), or None."""
    auto_submitted = _header(mail, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"auto-submitted: {auto_submitted}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if mail.get(header) is not None:
            return header.lower()
    precedence = _header(mail, "Precedence").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"precedence: {precedence}"
    suppress = _header(mail, "X-Auto-Response-Suppress").lower()
    if "oof" in suppress or "autoreply" in suppress or suppress.strip() == "all":
        return "x-auto-response-suppress"  # what Exchange sets on its own auto-replies
    if mail.get_content_type() == "multipart/report":
        report = mail.get_param("report-type") or "report"
        return f"report: {str(report).lower()}"
    if _header(mail, "Return-Path").strip() == "<>":
        return "null return-path (bounce)"
    return None


def _header(mail: EmailMessage, name: str) -> str:
    """A header as text; a header too broken to decode counts as absent."""
    try:
        value = mail.get(name)
    except (ValueError, IndexError, TypeError):  # malformed structured headers
        return ""
    return "" if value is None else str(value)


def _first_id(value: str) -> str | None:
    found = _MESSAGE_ID.search(value)
    if found:
        return found.group(1)
    stripped = value.strip()
    return stripped or None


def _sent_at(mail: EmailMessage) -> datetime:
    """The Date header in UTC; a missing or broken date is the time of receipt."""
    try:
        sent = parsedate_to_datetime(_header(mail, "Date"))
    except (TypeError, ValueError, IndexError):
        return datetime.now(UTC)
    return sent.replace(tzinfo=UTC) if sent.tzinfo is None else sent.astimezone(UTC)


def _body_text(mail: EmailMessage) -> str:
    """The best text body: text/plain, else HTML converted; any charset decoded."""
    part = mail.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = _decoded(part)
    if part.get_content_subtype() == "html":
        return html_to_text(content)
    return content.strip()


def _decoded(part: MIMEPart) -> str:
    """A text part's content; unknown or lying charsets are decoded leniently, never raised."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        return data.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else bytes(content).decode("utf-8", "replace")


def _attachments(mail: EmailMessage) -> list[Attachment]:
    """Metadata of every attachment (name, type, decoded size); the bytes are not kept."""
    found: list[Attachment] = []
    for part in mail.walk():
        if part.is_multipart() or part.get_content_disposition() not in ("attachment", "inline"):
            continue
        filename = part.get_filename()
        if part.get_content_disposition() == "inline" and not filename:
            continue  # inline body text, not an attachment
        payload = part.get_payload(decode=True)
        found.append(
            Attachment(
                filename=filename or "(unnamed)",
                content_type=part.get_content_type(),
                size=len(payload) if isinstance(payload, bytes) else None,
            )
        )
    return found
