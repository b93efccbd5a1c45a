"""Email parsing: multipart, HTML-only, charsets, reply stripping, threading, attachments,
auto-replies and bounces (the samples follow RFC 5322/3834/3464 and real client output)."""

from __future__ import annotations

from connectors.email._text import html_to_text, strip_reply
from connectors.email.parse import parse_email

THREADED_REPLY = b"""\
From: "Ann Example" <Ann@Example.COM>
To: help@acme.test
Subject: Re: [#C-1A2B3C] Parcel missing
Date: Tue, 03 Nov 2026 10:00:00 +0100
Message-ID: <reply-2@example.com>
In-Reply-To: <agent-1@acme.test>
References: <first-0@example.com> <agent-1@acme.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Still nothing arrived, please help.

--=20
Ann Example
Head of Things

On Mon, 2 Nov 2026 at 09:00, Acme Support <help@acme.test> wrote:
> We are looking into it.
--inner
Content-Type: text/html; charset="utf-8"

<p>Still nothing arrived, please help.</p>
--inner--

--outer
Content-Type: application/pdf; name="receipt.pdf"
Content-Disposition: attachment; filename="receipt.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKMSAwIG9iago=
--outer--
"""


def test_multipart_reply_is_threaded_stripped_and_keeps_the_full_body() -> None:
    parsed = parse_email(THREADED_REPLY, envelope_recipients=["help@acme.test"])
    message = parsed.message
    assert not parsed.is_auto_reply
    assert message.channel == "email"
    assert message.external_id == "reply-2@example.com"
    assert message.sender == "ann@example.com"
    assert message.customer.name == "Ann Example"
    assert message.text == "Still nothing arrived, please help."
    assert "We are looking into it." in message.metadata["full_body"]
    assert message.thread_ref == "first-0@example.com"  # the root of References
    assert message.in_reply_to == "agent-1@acme.test"
    assert message.metadata["references"] == ["first-0@example.com", "agent-1@acme.test"]
    assert message.subject == "Re: [#C-1A2B3C] Parcel missing"
    assert message.sent_at.isoformat() == "2026-11-03T09:00:00+00:00"
    [attachment] = message.attachments
    assert (attachment.filename, attachment.content_type) == ("receipt.pdf", "application/pdf")
    assert attachment.size == 23
    assert message.metadata["envelope_recipients"] == ["help@acme.test"]


def test_html_only_mail_in_a_legacy_charset_becomes_text() -> None:
    raw = (
        b"From: kunde@beispiel.de\r\nTo: help@acme.test\r\n"
        b"Subject: =?iso-8859-1?q?Bestellung_f=FCr_M=FCller?=\r\n"
        b"Message-ID: <de-1@beispiel.de>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"<html><head><style>p{color:red}</style></head><body>"
        b"<p>Gr=FC=DFe,</p><p>die Lieferung &amp; Rechnung fehlen.</p>"
        b"<script>alert(1)</script></body></html>\r\n"
    )
    message = parse_email(raw).message
    assert message.subject == "Bestellung für Müller"
    assert message.text == "Grüße,\n\ndie Lieferung & Rechnung fehlen."
    assert message.thread_ref == "de-1@beispiel.de"  # a new thread is its own root


def test_unknown_charset_and_missing_headers_never_raise() -> None:
    raw = (
        b"From: x@example.org\r\nContent-Type: text/plain; charset=klingon-8\r\n\r\n"
        b"caf\xc3\xa9 \xff\r\n"
    )
    message = parse_email(raw).message
    assert message.text.startswith("café")
    assert message.external_id.startswith("sha256:")  # no Message-ID: a content hash
    assert message.sent_at.tzinfo is not None


def test_shift_jis_plain_text() -> None:
    body = "注文が届きません".encode("shift_jis")
    raw = (
        b"From: tanaka@example.jp\r\nMessage-ID: <jp@example.jp>\r\n"
        b"Content-Type: text/plain; charset=shift_jis\r\n\r\n" + body
    )
    assert parse_email(raw).message.text == "注文が届きません"


def test_outlook_quote_and_mobile_signature_are_cut() -> None:
    outlook = (
        "Thanks, that worked.\n\nFrom: Acme Support <help@acme.test>\nSent: Monday\nTo: me\n\nold"
    )
    assert strip_reply(outlook) == "Thanks, that worked."
    assert strip_reply("Yes please.\n\nSent from my iPhone") == "Yes please."
    assert strip_reply("> only a quote") == "> only a quote"  # nothing new: keep it all
    assert strip_reply("From: my brother I heard about you") == "From: my brother I heard about you"


def test_html_blockquote_is_marked_as_quote() -> None:
    text = html_to_text("<div>New text</div><blockquote><p>old text</p></blockquote>")
    assert strip_reply(text) == "New text"


AUTO_REPLIES = {
    "auto-submitted": b"Auto-Submitted: auto-replied\r\n",
    "x-autoreply": b"X-Autoreply: yes\r\n",
    "precedence: bulk": b"Precedence: bulk\r\n",
    "precedence: junk": b"Precedence: junk\r\n",
    "precedence: list": b"Precedence: list\r\n",
    "x-auto-response-suppress": b"X-Auto-Response-Suppress: All\r\n",
}


def test_auto_replies_are_tagged() -> None:
    for reason, header in AUTO_REPLIES.items():
        raw = b"From: ooo@example.com\r\n" + header + b"Subject: Out of office\r\n\r\nAway.\r\n"
        parsed = parse_email(raw)
        assert parsed.is_auto_reply, reason
        assert reason in (parsed.auto_reply_reason or "")
        assert parsed.message.metadata["auto_reply"] is True
    human = b"From: a@example.com\r\nAuto-Submitted: no\r\n\r\nHi\r\n"
    assert not parse_email(human).is_auto_reply


def test_mailing_list_mail_is_marked_so_it_is_never_acknowledged() -> None:
    for header in (b"List-Id: <users.lists.example.org>", b"List-Unsubscribe: <mailto:u@x>"):
        raw = b"From: a@example.com\r\n" + header + b"\r\nSubject: Digest\r\n\r\nHi\r\n"
        parsed = parse_email(raw)
        assert parsed.message.metadata["mailing_list"] is True
        assert not parsed.is_auto_reply  # a list's mail still opens a case
    plain = parse_email(b"From: a@example.com\r\nSubject: Hi\r\n\r\nHi\r\n")
    assert "mailing_list" not in plain.message.metadata


DSN = b"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: help@acme.test
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce-1@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

This is the mail system at host mx.example.net. I'm sorry to have to inform you...
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Final-Recipient: rfc822; nobody@example.net
Action: failed
Status: 5.1.1
--b--
"""


def test_delivery_status_report_is_a_bounce() -> None:
    parsed = parse_email(DSN)
    assert parsed.is_auto_reply
    assert parsed.auto_reply_reason == "report: delivery-status"
