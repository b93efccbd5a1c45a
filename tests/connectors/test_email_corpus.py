"""Awkward mail as real servers deliver it: no usable From, group syntax, encoded words,
broken charsets, huge subjects, and MIME bombs (too many parts, too deep). Each sample is
shaped after real-world mail; every one must end as a message or as a clear refusal."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email._structure import MAX_HEADER_FIELD_BYTES, bounded_mail
from connectors.email.parse import (
    MAX_MIME_DEPTH,
    MAX_MIME_PARTS,
    MailTooComplexError,
    parse_email,
)
from schemas import InboundMessage

BODY = b"\r\nMy parcel never arrived.\r\n"

# (name, headers, envelope MAIL FROM, expected sender, expected source of the address)
CORPUS: list[tuple[str, bytes, str | None, str, str]] = [
    (
        "plain from",
        b"From: Ann <ann@example.com>\r\n",
        "bounce@mta.example.net",
        "ann@example.com",
        "from",
    ),
    (
        "no from at all",
        b"To: help@acme.test\r\n",
        "ann@example.com",
        "ann@example.com",
        "mail_from",
    ),
    ("empty from", b"From: \r\n", "ann@example.com", "ann@example.com", "mail_from"),
    (
        "group syntax from",
        b"From: undisclosed-recipients:;\r\nReply-To: Bob <bob@example.org>\r\n",
        "x@relay.example",
        "bob@example.org",
        "reply_to",
    ),
    (
        "name only from",
        b"From: Ann Example\r\nSender: ann@example.com\r\n",
        None,
        "ann@example.com",
        "sender",
    ),
    (
        "local part only",
        b"From: root\r\n",
        "root@host.example.com",
        "root@host.example.com",
        "mail_from",
    ),
    (
        "encoded word from",
        b"From: =?utf-8?q?M=C3=BCller?= <mueller@example.de>\r\n",
        None,
        "mueller@example.de",
        "from",
    ),
    (
        "unknown charset in encoded word",
        b"From: =?x-klingon?q?Qapla?= <worf@example.org>\r\n",
        None,
        "worf@example.org",
        "from",
    ),
    (
        "raw 8-bit from",
        b"From: J\xf6rg <joerg@example.de>\r\n",
        None,
        "joerg@example.de",
        "from",
    ),
    (
        "angle brackets without address",
        b"From: <>\r\nReply-To: <>\r\n",
        "ops@example.com",
        "ops@example.com",
        "mail_from",
    ),
    (
        "two from headers",
        b"From: \r\nFrom: Carl <carl@example.com>\r\n",
        None,
        "carl@example.com",
        "from",
    ),
    (
        "broken address with comment",
        b"From: (comment only)\r\nReply-To: Dora <dora@example.com> (work)\r\n",
        None,
        "dora@example.com",
        "reply_to",
    ),
    (
        "return-path only (IMAP)",
        b"Return-Path: <eve@example.com>\r\nFrom: eve\r\n",
        None,
        "eve@example.com",
        "return_path",
    ),
    (
        "uppercase address",
        b"From: ANN@EXAMPLE.COM\r\n",
        None,
        "ann@example.com",
        "from",
    ),
]


@pytest.mark.parametrize(
    ("name", "headers", "mail_from", "sender", "source"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_the_customer_address_falls_back_from_from_to_the_envelope(
    name: str, headers: bytes, mail_from: str | None, sender: str, source: str
) -> None:
    raw = headers + b"Subject: help\r\n" + BODY
    message = parse_email(raw, envelope_sender=mail_from).message
    assert message.sender == sender, name
    assert message.customer.email == sender
    assert message.metadata["sender_source"] == source
    InboundMessage.model_validate_json(message.model_dump_json())  # publishable as is


def test_an_over_long_message_id_becomes_a_stable_hash_not_a_refusal() -> None:
    raw = b"From: ann@example.com\r\nMessage-ID: <" + b"i" * 5_000 + b"@x>\r\n" + BODY
    first, again = parse_email(raw).message, parse_email(raw + b"more\r\n").message
    assert first.external_id.startswith("sha256:")
    assert first.external_id == again.external_id  # the same Message-ID, the same message
    reply = b"From: bob@example.com\r\nIn-Reply-To: <" + b"i" * 5_000 + b"@x>\r\n" + BODY
    assert parse_email(reply).message.thread_ref == first.thread_ref == first.external_id


def test_null_envelope_sender_and_no_address_is_published_as_an_automatic_mail() -> None:
    parsed = parse_email(b"Subject: Undeliverable\r\n" + BODY, envelope_sender="")
    assert parsed.is_auto_reply  # it can never be answered: a note at most, never a case
    assert parsed.message.metadata["sender_source"] == "none"
    assert parsed.message.customer.email is None


def test_a_subject_over_the_contract_limit_is_truncated_and_kept_whole() -> None:
    limit = InboundMessage.model_fields["subject"].metadata[0].max_length
    subject = "Order 42 " + "x" * 5_000
    raw = b"From: ann@example.com\r\nSubject: " + subject.encode() + BODY
    message = parse_email(raw).message
    assert message.subject is not None
    assert len(message.subject) <= limit
    assert message.subject.startswith("Order 42 ")
    assert message.subject_full == subject


def nested_multipart(depth: int) -> bytes:
    head = b"From: ann@example.com\r\nMIME-Version: 1.0\r\n"
    lines = [head + b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n']
    for level in range(1, depth):
        lines.append(
            f'--b{level - 1}\r\nContent-Type: multipart/mixed; boundary="b{level}"\r\n\r\n'.encode()
        )
    lines.append(f"--b{depth - 1}\r\nContent-Type: text/plain\r\n\r\ndeep\r\n".encode())
    lines.extend(f"--b{level}--\r\n".encode() for level in reversed(range(depth)))
    return b"".join(lines)


def many_parts(count: int) -> bytes:
    head = (
        b"From: ann@example.com\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
    )
    part = b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return head + part * count + b"--p--\r\n"


def test_a_3000_deep_multipart_is_refused_by_a_cap_not_a_recursion_error() -> None:
    with pytest.raises(MailTooComplexError):
        parse_email(nested_multipart(3_000))
    with pytest.raises(MailTooComplexError, match="deep"):  # few parts, but too deep
        parse_email(nested_multipart(MAX_MIME_DEPTH + 1))


def test_50000_parts_are_refused_by_the_part_cap() -> None:
    with pytest.raises(MailTooComplexError, match="parts"):
        parse_email(many_parts(50_000))


def test_mail_within_the_caps_parses() -> None:
    assert parse_email(nested_multipart(MAX_MIME_DEPTH - 2)).message.text == "deep"
    assert parse_email(many_parts(MAX_MIME_PARTS - 2)).message.text == "x"


def test_nested_attached_messages_count_towards_the_depth() -> None:
    raw = b"From: ann@example.com\r\n"
    for _ in range(3_000):
        raw += b"Content-Type: message/rfc822\r\n\r\n"
    raw += b"From: inner@example.com\r\n\r\nhi\r\n"
    with pytest.raises(MailTooComplexError, match="deep"):
        parse_email(raw)


def test_a_five_megabyte_subject_is_cut_before_parsing() -> None:
    raw = b"From: ann@example.com\r\nSubject: " + b"word " * 1_000_000 + b"\r\n" + BODY
    message = parse_email(raw).message
    assert message.subject is not None and message.subject.startswith("word word")
    full = message.subject_full
    assert 2_000 < len(full) <= MAX_HEADER_FIELD_BYTES  # cut at the header field cap
    assert message.text == "My parcel never arrived."


def test_over_long_header_fields_are_cut_in_every_part_and_nothing_else_changes() -> None:
    ordinary = many_parts(3)
    assert bounded_mail(ordinary) == ordinary
    folded = b"\r\n ".join([b"a@example.com,"] * 10_000)
    raw = (
        b"From: ann@example.com\r\nTo: " + folded + b"\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
        b'--p\r\nContent-Type: text/plain; name="' + b"x" * 100_000 + b'"\r\n\r\nkept\r\n--p--\r\n'
    )
    bounded = bounded_mail(raw)
    assert len(bounded) < MAX_HEADER_FIELD_BYTES * 2 + 1_000
    assert b"MIME-Version: 1.0\r\n" in bounded  # the fields after the long one stay
    assert b"\r\n\r\nkept\r\n--p--\r\n" in bounded  # bodies are never touched
    assert parse_email(raw).message.text == "kept"


CORPUS_DIR = Path(__file__).parent / "mime_corpus"


def test_every_mail_of_a_public_mime_corpus_becomes_a_message() -> None:
    files = sorted(CORPUS_DIR.glob("msg_*.txt"))
    assert len(files) == 48
    sources: Counter[str] = Counter()
    for path in files:
        message = parse_email(path.read_bytes(), envelope_sender="relay@example.net").message
        InboundMessage.model_validate_json(message.model_dump_json())
        sources[message.metadata["sender_source"]] += 1
    assert sources == {"from": 39, "mail_from": 9}  # 9 have no usable From


_NAMES = st.sampled_from(
    [
        b"From",
        b"Reply-To",
        b"Sender",
        b"To",
        b"Cc",
        b"Subject",
        b"Message-ID",
        b"References",
        b"In-Reply-To",
        b"Date",
        b"Content-Type",
        b"Content-Transfer-Encoding",
        b"Content-Disposition",
        b"MIME-Version",
        b"Return-Path",
        b"Auto-Submitted",
        b"Precedence",
    ]
)
_VALUES = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [
            b"=?utf-8?b?////?=",
            b'multipart/mixed; boundary="b"',
            b"text/html; charset=utf-7",
            b"<a@b>",
            b"a@b, c@d",
            b"undisclosed:;",
            b"base64",
            b"quoted-printable",
            b"attachment; filename*=utf-8''%ff%fe",
            b"\x00\xff",
            b"=?iso-2022-jp?b?GyRC?=",
            b"Mon, 99 Foo 2026 99:99:99 +9999",
        ]
    ),
)
_HEADER = st.tuples(_NAMES, _VALUES).map(lambda t: t[0] + b": " + t[1] + b"\r\n")
_BODY = st.one_of(
    st.binary(max_size=300),
    st.just(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n"),
    st.just(b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: x\r\n\r\nhi\r\n--b--\r\n"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(_HEADER, max_size=12),
    _BODY,
    st.one_of(st.none(), st.just(""), st.just("ann@example.com")),
)
def test_any_mix_of_awkward_headers_and_bodies_becomes_a_message_or_a_clear_refusal(
    headers: list[bytes], body: bytes, envelope: str | None
) -> None:
    raw = b"".join(headers) + b"\r\n" + body
    try:
        m = parse_email(raw, envelope_sender=envelope).message
    except MailTooComplexError:
        return
    InboundMessage.model_validate_json(m.model_dump_json())


def test_a_huge_mail_still_fits_one_kafka_record() -> None:
    recipients = b",\r\n ".join(b"r%d@example.com" % n for n in range(1_500))
    body = ("\U0001f4e6" * 100_000).encode()  # 100,000 four-byte characters
    raw = (
        b"From: ann@example.com\r\nTo: " + recipients + b"\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    )
    message = parse_email(raw).message
    assert len(message.model_dump_json().encode()) < 983_040  # under the broker's 1 MB
    assert len(message.metadata["to"]) <= 1_000
    assert message.metadata["full_body"].startswith("\U0001f4e6")
