"""Hostile text in a reply can never add a mail header or a recipient, nor crash the sender.

Subjects, recipients, message ids and action ids come from customers' messages and agents'
actions; any of them may carry CR/LF or other line breaks.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import Any

import httpx
import pytest

from connectors.email.plugin import EmailSender, EmailSettings
from connectors.email.relay import SmtpRelay
from connectors.outbound._model import DeliveryError, Notification, Reply
from connectors.outbound.notify import Delivery, Notifier, NotifyConfig
from tests.connectors.test_outbound import CASE, T0

BREAKS = ["\r\n", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]


def reply(**fields: Any) -> Reply:
    values: dict[str, Any] = {
        "case_id": CASE,
        "key": "agent:a1",
        "channel": "email",
        "text": "Your refund was sent today.",
        "recipient": "ana@example.com",
        "subject": "Charged twice",
        "thread_ref": "root-1@example.com",
        "in_reply_to": "second-2@example.com",
        "agent_id": "agent-7",
        "at": T0,
        **fields,
    }
    return Reply(**values)


def mail_of(candidate: Reply) -> Any:
    settings = EmailSettings(reply_from="help@acme.test", smtp_relay_host="127.0.0.1")
    mail = EmailSender(settings).email_message(candidate)
    # what goes over the wire, parsed back the way a receiving server would
    return BytesParser(policy=policy.default).parsebytes(mail.as_bytes())


@pytest.mark.parametrize("newline", BREAKS)
def test_a_subject_with_a_line_break_stays_one_subject_and_adds_no_header(newline: str) -> None:
    wire = mail_of(reply(subject=f"Charged twice{newline}Bcc: thief@evil.test"))
    assert wire["Bcc"] is None
    assert wire.get_all("Subject") == [f"Re: Charged twice Bcc: thief@evil.test [#{CASE}]"]
    assert wire["To"] == "ana@example.com"


def test_a_subject_that_tries_to_start_the_body_adds_nothing() -> None:
    wire = mail_of(reply(subject="Hi\r\n\r\nForged body\r\n.\r\nMAIL FROM:<x@evil.test>"))
    assert wire.get_content().strip() == "Your refund was sent today."
    assert "\n" not in str(wire["Subject"])


@pytest.mark.parametrize("newline", BREAKS)
def test_message_ids_and_action_ids_with_line_breaks_add_no_header(newline: str) -> None:
    wire = mail_of(
        reply(
            key=f"agent:a1{newline}Bcc: thief@evil.test",
            thread_ref=f"root@example.com>{newline}Bcc: thief@evil.test",
            in_reply_to=f"second@example.com{newline}X-Evil: 1",
        )
    )
    assert wire["Bcc"] is None and wire["X-Evil"] is None
    assert len(wire.get_all("Message-ID")) == 1
    assert "\n" not in str(wire["Message-ID"])


@pytest.mark.parametrize(
    "recipient",
    [
        "ana@example.com\r\nBcc: thief@evil.test",
        "ana@example.com, thief@evil.test",
        "ana@example.com\nthief@evil.test",
        "Ana <ana@example.com>; thief@evil.test",
        "not an address",
    ],
)
def test_a_recipient_that_is_not_exactly_one_address_is_a_permanent_failure(
    recipient: str,
) -> None:
    with pytest.raises(DeliveryError) as refused:
        mail_of(reply(recipient=recipient))
    assert refused.value.permanent
    assert refused.value.reason == "invalid_recipient"


def test_a_case_id_with_a_line_break_in_a_notification_mail_adds_no_header() -> None:
    notification = Notification(
        case_id=f"{CASE}\r\nBcc: thief@evil.test",
        event_id="ev-1\r\nX-Evil: 1",
        targets=("team-leads",),
        reason="first_response breached",
        queue="tier2",
        priority="urgent",
        at=T0,
    )
    config = NotifyConfig(
        emails={"team-leads": ["lead@acme.test"]},
        mail_from="escalator@acme.test",
        smtp=SmtpRelay("127.0.0.1", 1),
    )
    with httpx.Client() as client:
        mail = Notifier(config, client).mail(Delivery(notification, "team-leads", "email"))
    wire = BytesParser(policy=policy.default).parsebytes(mail.as_bytes())
    assert wire["Bcc"] is None and wire["X-Evil"] is None
    assert wire["To"] == "lead@acme.test"
