"""Acknowledgements go out through the reply service like agents' replies, loop-safely.

Through the real broker to a local SMTP server and HTTP peer: threaded mail with the case
reference and `Auto-Submitted: auto-replied`, the same retries and `reply.failed`, and at
most one per recipient within the window (the rest become `acknowledgement.suppressed`).
"""

from __future__ import annotations

import json

from schemas import AcknowledgementPayload, CaseEvent, PromiseView, Topics
from schemas.ids import event_id_for
from tests.connectors.peers import eventually, http_peer, smtp_peer
from tests.connectors.test_outbound import (
    T0,
    all_committed,
    failed_events,
    mail_config,
    publish,
    reply_hook,
    running,
)

PROMISE = PromiseView(
    clock="first_response",
    due_at="2026-11-20T12:00:00Z",
    local="Friday 20 November, 13:00 CET",
    timezone="Europe/Berlin",
)


def acknowledged(
    case_id: str, channel: str = "email", kind: str = "opened", **fields: str
) -> CaseEvent:
    event_id = event_id_for(case_id, "case.acknowledged", kind, channel)
    payload = AcknowledgementPayload(
        kind=kind,
        template="default",
        message_key=f"ack:{event_id}",
        customer_id=fields.pop("customer_id", "cus_1"),
        channel=channel,
        recipient=fields.pop("recipient", "ana@example.com"),
        subject=fields.pop("subject", f"We received your message [#{case_id}]"),
        text=f"We will answer by {PROMISE.local}.",
        thread_ref=fields.pop("thread_ref", "<root-1@example.com>"),
        in_reply_to=fields.pop("in_reply_to", "<m1@example.com>"),
        promise=PROMISE,
    )
    return CaseEvent(
        event_id=event_id,
        case_id=case_id,
        type="case.acknowledged",
        at=T0,
        reason="customer acknowledged",
        payload=payload.model_dump(mode="json"),
    )


def test_an_acknowledgement_mail_threads_carries_the_reference_and_is_auto_submitted(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with smtp_peer() as mail_server:
        config = mail_config(mail_server.host, mail_server.port)
        publish(kafka_bootstrap, topics, acknowledged("C-AB2CD3EF4G", subject="We got it"))
        with running(kafka_bootstrap, topics, config):
            [(envelope, mail)] = mail_server.wait_for(1)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert envelope.rcpt_tos == ["ana@example.com"]
    assert mail["Subject"] == "We got it [#C-AB2CD3EF4G]"  # no "Re:", the reference added
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert mail["In-Reply-To"] == "<m1@example.com>"
    assert mail["References"] == "<root-1@example.com> <m1@example.com>"
    assert mail.get_content().strip() == "We will answer by Friday 20 November, 13:00 CET."


def test_one_acknowledgement_per_customer_within_the_window_updates_excepted(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with smtp_peer() as mail_server:
        config = mail_config(mail_server.host, mail_server.port)
        first = acknowledged("C-AB2CD3EF4G")
        second = acknowledged("C-ZZ2CD3EF4G", recipient="ANA@example.com")  # same customer
        update = acknowledged("C-AB2CD3EF4G", kind="update")
        other = acknowledged("C-YY2CD3EF4G", recipient="bo@example.com", customer_id="cus_2")
        publish(kafka_bootstrap, topics, first, second, update, other)
        with running(kafka_bootstrap, topics, config):
            suppressed = failed_events(kafka_bootstrap, topics, 1, "acknowledgement.suppressed")
            mail_server.wait_for(3)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
        # replaying every record sends nothing again and suppresses nothing new
        publish(kafka_bootstrap, topics, first, second, update, other)
        with running(kafka_bootstrap, topics, config):
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
        again = failed_events(kafka_bootstrap, topics, 1, "acknowledgement.suppressed")
    # the two cases sit on different partitions: whichever came second waited
    [held_back] = suppressed
    assert held_back.case_id in {"C-AB2CD3EF4G", "C-ZZ2CD3EF4G"}
    assert held_back.payload["reason"] == "window"
    assert {event.event_id for event in again} == {held_back.event_id}
    sent = sorted(str(mail["Subject"]) for _, mail in mail_server.mails)
    assert len(sent) == 3
    assert "We received your message [#C-YY2CD3EF4G]" in sent
    assert sent.count("We received your message [#C-AB2CD3EF4G]") >= 1  # the update at least


def test_an_acknowledgement_that_cannot_be_delivered_is_a_reply_failed_event(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with http_peer(statuses=[503, 503, 503]) as api:
        config = reply_hook(api.url + "/hook")
        publish(
            kafka_bootstrap,
            topics,
            acknowledged("C-AB2CD3EF4G", channel="chat", recipient="visitor-9"),
        )
        with running(kafka_bootstrap, topics, config, attempts=3):
            [failed] = failed_events(kafka_bootstrap, topics, 1, "reply.failed")
            calls = api.wait_for(3)
    assert failed.payload["attempts"] == 3
    assert failed.payload["message_key"].startswith("ack:")
    body = json.loads(calls[0].body)
    assert body["auto_submitted"] is True and body["agent_id"] is None
    assert body["idempotency_key"].startswith("ack:")


def test_the_window_is_per_customer_across_channels_and_addresses(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with http_peer() as api:
        config = reply_hook(api.url + "/hook")
        chat = acknowledged("C-AB2CD3EF4G", channel="chat", recipient="visitor-9")
        webform = acknowledged("C-AB2CD3EF4G", channel="webform", recipient="ana@example.com")
        publish(kafka_bootstrap, topics, chat, webform)  # one case: one partition, in order
        with running(kafka_bootstrap, topics, config):
            [held_back] = failed_events(kafka_bootstrap, topics, 1, "acknowledgement.suppressed")
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert held_back.event_id == event_id_for(
        "C-AB2CD3EF4G", "acknowledgement.suppressed", webform.payload["message_key"]
    )
    assert [json.loads(call.body)["channel"] for call in api.calls] == ["chat"]
