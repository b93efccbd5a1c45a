"""Parse raw RFC 5322 mail into the inbound message contract (`email` package, modern policy).

Handles multipart and HTML-only mail, any charset, quoted-reply and signature stripping
(the full body is kept in `metadata.full_body`), threading headers (`thread_ref` is the
root of `References`), attachment metadata, and recognises auto-replies and bounces so
they are tagged (`metadata.auto_reply`, `metadata.tags`) and never open a case.

The customer's address is taken from `From`, else `Reply-To`, else `Sender`, else the SMTP
envelope's `MAIL FROM` (or, for mail read from a mailbox, its `Return-Path`); which one is
recorded in `metadata.sender_source`. A subject longer than the contract allows is cut,
the whole one kept in `subject_full`. The MIME structure is capped (parts, depth)
and each header field cut to 32 KiB before parsing; see `connectors.email._structure`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from connectors.email._structure import (
    MAX_MIME_DEPTH,
    MAX_MIME_PARTS,
    MailTooComplexError,
    bounded_mail,
)
from connectors.email._text import html_to_text, strip_reply
from schemas import Attachment, CustomerAttributes, InboundMessage
from schemas.limits import (
    MAX_ATTRIBUTE_LENGTH,
    MAX_CONTENT_TYPE_LENGTH,
    MAX_ID_LENGTH,
    MAX_RECIPIENTS,
    MAX_SUBJECT_FULL_LENGTH,
    MAX_TEXT_LENGTH,
)

__all__ = [
    "MAX_MIME_DEPTH",
    "MAX_MIME_PARTS",
    "EmailParseError",
    "MailTooComplexError",
    "ParsedEmail",
    "auto_reply_reason",
    "parse_email",
]

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post")
"""Headers of mail sent through a mailing list (RFC 2369, RFC 2919)."""
_SENDER_HEADERS = (("From", "from"), ("Reply-To", "reply_to"), ("Sender", "sender"))
_MAX_ADDRESS_LENGTH = 254  # RFC 5321's limit on a forward-path
_MAX_ID_LENGTH = MAX_ID_LENGTH  # the contract's bound on external_id, thread_ref, in_reply_to
_MAX_FULL_BODY_BYTES = 262_144  # with `text` and the headers, a message stays under 1 MB
_MAX_LISTED_ADDRESSES = MAX_RECIPIENTS  # To and Cc entries kept in metadata
_MAX_ATTRIBUTE_LENGTH = MAX_ATTRIBUTE_LENGTH  # a name or an attachment's file name
_MAX_CONTENT_TYPE_LENGTH = MAX_CONTENT_TYPE_LENGTH


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
    raw: bytes,
    envelope_recipients: list[str] | None = None,
    source: str = "smtp",
    envelope_sender: str | None = None,
    max_parts: int = MAX_MIME_PARTS,
    max_depth: int = MAX_MIME_DEPTH,
) -> ParsedEmail:
    """Parse raw mail bytes into an `InboundMessage` on channel `email`.

    `envelope_recipients` and `envelope_sender` (the SMTP RCPT TO and MAIL FROM; None when
    the mail did not come over SMTP) and `source` (smtp, imap, webhook) are recorded in
    metadata. Raises MailTooComplexError (an EmailParseError) over the MIME caps. A mail
    with no address anywhere is still a message, tagged automatic: it cannot be answered.
    """
    mail = BytesParser(policy=policy.default).parsebytes(bounded_mail(raw, max_parts, max_depth))
    if not isinstance(mail, EmailMessage):  # policy.default always gives EmailMessage
        raise EmailParseError("not a mail message")
    name, address, sender_source = customer_address(mail, envelope_sender)
    full_body = _body_text(mail)
    message_id = _bounded_id(_first_id(_clean(_header(mail, "Message-ID"))))
    references = [
        _bounded_id(ref) or ref for ref in _MESSAGE_ID.findall(_clean(_header(mail, "References")))
    ]
    in_reply_to = _bounded_id(_first_id(_clean(_header(mail, "In-Reply-To"))))
    thread_root = references[0] if references else (in_reply_to or message_id)
    auto_reason = auto_reply_reason(mail)
    if address is None and auto_reason is None:
        auto_reason = "no sender address anywhere (a null reverse-path)"
    metadata: dict[str, Any] = {
        "source": source,
        "sender_source": sender_source,
        "full_body": _cut_utf8(full_body[:MAX_TEXT_LENGTH], _MAX_FULL_BODY_BYTES),
        "to": _listed(mail, "To"),
        "cc": _listed(mail, "Cc"),
    }
    if message_id:
        metadata["message_id"] = message_id
    if references:
        metadata["references"] = references
    if envelope_recipients:
        metadata["envelope_recipients"] = envelope_recipients
    if envelope_sender is not None:
        metadata["envelope_sender"] = _clean(envelope_sender)[:_MAX_ADDRESS_LENGTH]
    # the contract cuts an over-long subject and keeps the whole of it in `subject_full`
    subject = (_clean(_header(mail, "Subject")) or "")[:MAX_SUBJECT_FULL_LENGTH] or None
    if any(mail.get(header) is not None for header in _LIST_HEADERS):
        metadata["mailing_list"] = True  # a list's mail opens a case, but is never acknowledged
    if auto_reason:
        metadata["auto_reply"] = True
        metadata["auto_reply_reason"] = auto_reason
        metadata["tags"] = ["auto_reply"]
    message = InboundMessage(
        channel="email",
        external_id=message_id or f"sha256:{hashlib.sha256(raw).hexdigest()}",
        sender=address or "mailer-daemon",
        text=strip_reply(full_body)[:MAX_TEXT_LENGTH],
        sent_at=_sent_at(mail),
        subject=subject,
        thread_ref=thread_root[:MAX_ID_LENGTH] if thread_root else None,
        in_reply_to=in_reply_to[:MAX_ID_LENGTH] if in_reply_to else None,
        customer=CustomerAttributes(
            email=address, name=(name or "")[:_MAX_ATTRIBUTE_LENGTH] or None
        ),
        attachments=_attachments(mail),
        metadata=metadata,
    )
    return ParsedEmail(message=message, auto_reply_reason=auto_reason)


def customer_address(
    mail: EmailMessage, envelope_sender: str | None = None
) -> tuple[str | None, str | None, str]:
    """The customer's name, address (lowercased) and where it came from.

    `From`, then `Reply-To`, then `Sender`, then the envelope's MAIL FROM (when the mail came
    over SMTP) or the `Return-Path` its mailbox recorded. (None, None, "none") if no usable
    address is anywhere.
    """
    for header, source in _SENDER_HEADERS:
        for name, address in _addresses(mail, header):
            return name, address, source
    if envelope_sender is not None:
        fallback, source = envelope_sender, "mail_from"
    else:
        fallback, source = _header(mail, "Return-Path"), "return_path"
    for name, address in getaddresses([_clean(fallback)]):
        if _usable(address):
            return name or None, address.lower(), source
    return None, None, "none"


def _addresses(mail: EmailMessage, header: str) -> list[tuple[str | None, str]]:
    """The usable addresses in every `header` of the mail, in order."""
    try:
        values = mail.get_all(header) or []
    except (ValueError, IndexError, TypeError):  # malformed structured headers
        return []
    found: list[tuple[str | None, str]] = []
    for name, address in getaddresses([_clean(str(value)) for value in values]):
        if _usable(address):
            found.append((name or None, address.lower()))
    return found


def _listed(mail: EmailMessage, header: str) -> list[str]:
    """The addresses of a recipient header, as many as metadata keeps."""
    found = getaddresses([_clean(_header(mail, header))])
    return [address for _name, address in found if address][:_MAX_LISTED_ADDRESSES]


def _cut_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, never inside a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


def _usable(address: str) -> bool:
    """An address we can key a customer by and answer: `local@domain`, printable, bounded."""
    local, at, domain = address.rpartition("@")
    return (
        bool(at and local and domain)
        and len(address) <= _MAX_ADDRESS_LENGTH
        and address.isprintable()
        and not any(c.isspace() for c in address)
        and "\ufffd" not in address
    )


def _clean(value: str) -> str:
    """Header text made safe for JSON: undecodable bytes (kept as surrogates) become U+FFFD."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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


def _bounded_id(value: str | None) -> str | None:
    """A message id the contract can hold: one too long becomes its stable hash."""
    if value is None or len(value) <= _MAX_ID_LENGTH:
        return value
    return f"sha256:{hashlib.sha256(value.encode()).hexdigest()}"


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
                filename=_clean(filename)[:_MAX_ATTRIBUTE_LENGTH] if filename else "(unnamed)",
                content_type=part.get_content_type()[:_MAX_CONTENT_TYPE_LENGTH],
                size=len(payload) if isinstance(payload, bytes) else None,
            )
        )
    return found
