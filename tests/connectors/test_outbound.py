"""Reply delivery and escalation notifications through the real broker, to real local peers:
an aiosmtpd server receiving the mail and HTTP servers recording the calls."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
from confluent_kafka import Consumer, TopicPartition
from pydantic_settings import BaseSettings

from connectors.channels.discourse import DiscourseSettings
from connectors.channels.slack import SlackSettings
from connectors.channels.twilio import TwilioSettings
from connectors.channels.webhook import WebhookSettings
from connectors.email.plugin import EmailSender, EmailSettings
from connectors.email.relay import SmtpRelay
from connectors.outbound._model import reply_in
from connectors.outbound.notify import Notifier, NotifyConfig
from connectors.outbound.service import DeliveryService, RetryPolicy
from schemas import CaseEvent, CaseMessage, MessageAppendedPayload, Topics
from schemas.ids import event_id_for
from tests.connectors.peers import eventually, http_peer, smtp_peer
from tests.connectors.plugin_support import senders
from tests.kafka_support import consume_until, create_topics, produce

CASE = "C-AB2CD3EF4G"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def reply_event(action_id: str, channel: str, **message: Any) -> CaseEvent:
    fields: dict[str, Any] = {
        "channel": channel,
        "text": "Your refund was sent today.",
        "sent_at": T0,
        "sender": "agent-7",
        "external_id": f"agent:{action_id}",
        "direction": "outbound",
        **message,
    }
    return CaseEvent(
        event_id=event_id_for(CASE, "message.appended", f"agent:{action_id}"),
        case_id=CASE,
        type="message.appended",
        at=T0,
        reason="reply by agent-7",
        payload=MessageAppendedPayload(
            customer_id="cus_1",
            message_key=f"agent:{action_id}",
            message=CaseMessage.model_validate(fields),
            evidence="reply by agent-7",
        ).model_dump(mode="json"),
    )


def escalated_event(notify: list[str]) -> CaseEvent:
    return CaseEvent(
        event_id=event_id_for(CASE, "case.escalated", "breach:first_response:0"),
        case_id=CASE,
        type="case.escalated",
        at=T0,
        reason="first_response breached: escalation step 2",
        payload={
            "kind": "case.escalated",
            "escalation": {"step": 2, "on": "breach", "notify": notify, "queue": "tier2"},
            "queue": "tier2",
            "priority": "urgent",
        },
    )


def mail_config(host: str, port: int) -> dict[str, BaseSettings]:
    """Replies by mail through the relay at host:port."""
    relay = EmailSettings(reply_from="help@acme.test", smtp_relay_host=host, smtp_relay_port=port)
    return {"email": relay}


def reply_hook(url: str) -> dict[str, BaseSettings]:
    """Replies on other channels to the reply webhook at `url`, signed with `s`."""
    return {"webhook": WebhookSettings(reply_webhook_url=url, reply_webhook_secret="s")}


def publish(bootstrap: str, topics: Topics, *events: CaseEvent) -> None:
    produce(
        bootstrap,
        topics.case_events,
        [(event.case_id.encode(), event.model_dump_json().encode()) for event in events],
    )


@contextmanager
def running(
    bootstrap: str,
    topics: Topics,
    config: dict[str, BaseSettings],
    notify: NotifyConfig | None = None,
    attempts: int = 4,
    max_backoff_seconds: float = 0.2,
) -> Iterator[DeliveryService]:
    create_topics(bootstrap, [topics.case_events, topics.dlq, topics.reply_deliveries])
    with httpx.Client(timeout=5.0) as client:
        service = DeliveryService(
            {"bootstrap.servers": bootstrap},
            topics,
            senders(client, **config),
            Notifier(notify or NotifyConfig(), client),
            RetryPolicy(
                attempts=attempts,
                first_backoff_seconds=0.05,
                max_backoff_seconds=max_backoff_seconds,
            ),
            from_beginning=True,
        )
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            yield service
        finally:
            service.stop()
            thread.join(timeout=30)


def all_committed(bootstrap: str, topics: Topics, group: str | None = None) -> bool:
    """Whether the replies group (or `group`) committed every record of cases.events."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group or f"{topics.prefix}replies"}
    )
    try:
        metadata = consumer.list_topics(topics.case_events, timeout=10)
        partitions = [
            TopicPartition(topics.case_events, p)
            for p in metadata.topics[topics.case_events].partitions
        ]
        committed = consumer.committed(partitions, timeout=10)
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > 0 and tp.offset != high:
                return False
        return True
    finally:
        consumer.close()


def failed_events(bootstrap: str, topics: Topics, count: int, kind: str) -> list[CaseEvent]:
    records = consume_until(
        bootstrap,
        topics.case_events,
        lambda rs: sum(1 for r in rs if json.loads(r.value or b"{}").get("type") == kind) >= count,
    )
    events = [CaseEvent.model_validate_json(r.value or b"") for r in records]
    return [event for event in events if event.type == kind]


def test_email_reply_goes_out_in_the_customers_thread_with_the_case_reference(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with smtp_peer() as mail_server:
        config = mail_config(mail_server.host, mail_server.port)
        event = reply_event(
            "a1",
            "email",
            recipient="ana@example.com",
            subject="Charged twice",
            thread_ref="root-1@example.com",
            in_reply_to="second-2@example.com",
        )
        customer_message = reply_event("x", "email").model_copy(deep=True)
        customer_message.payload["message_key"] = "email:m1@example.com"  # not an agent reply
        publish(kafka_bootstrap, topics, customer_message, event)
        with running(kafka_bootstrap, topics, config):
            [(envelope, mail)] = mail_server.wait_for(1)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert envelope.rcpt_tos == ["ana@example.com"]
    assert mail["Subject"] == f"Re: Charged twice [#{CASE}]"
    assert mail["In-Reply-To"] == "<second-2@example.com>"
    assert mail["References"] == "<root-1@example.com> <second-2@example.com>"
    assert mail["Message-ID"] == f"<a1.{CASE}@acme.test>"
    assert mail.get_content().strip() == "Your refund was sent today."
    assert len(mail_server.mails) == 1  # the customer's own message was not sent anywhere


def test_sms_slack_forum_and_webhook_replies_reach_their_apis(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with http_peer() as api:
        config: dict[str, BaseSettings] = {
            "twilio": TwilioSettings(account_sid="AC123", auth_token="tok", api_url=api.url),
            "slack": SlackSettings(bot_token="xoxb-1", api_url=api.url + "/slack"),
            "discourse": DiscourseSettings(
                url=api.url + "/forum", api_key="dk", api_username="support"
            ),
            "webhook": WebhookSettings(
                reply_webhook_url=api.url + "/hook", reply_webhook_secret="hook-secret"
            ),
        }
        publish(
            kafka_bootstrap,
            topics,
            reply_event(
                "s1", "whatsapp", recipient="+4915123456789", thread_ref="+4915123456789>+4930111"
            ),
            reply_event("s2", "slack", recipient="U1", thread_ref="C42:1700000000.000100"),
            reply_event("s3", "community", recipient="ana", thread_ref="1234"),
            reply_event("s4", "chat", recipient="visitor-9", thread_ref="conv-5"),
        )
        with running(kafka_bootstrap, topics, config):
            calls = api.wait_for(4)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    by_path = {call.path: call for call in calls}
    twilio = by_path["/2010-04-01/Accounts/AC123/Messages.json"]
    form = {k: v[0] for k, v in parse_qs(twilio.body.decode()).items()}
    assert form == {
        "To": "whatsapp:+4915123456789",
        "From": "whatsapp:+4930111",
        "Body": "Your refund was sent today.",
    }
    assert "i-twilio-idempotency-token" not in twilio.headers  # Twilio has no such key
    assert twilio.headers["authorization"].startswith("Basic ")
    slack = by_path["/slack/chat.postMessage"]
    assert json.loads(slack.body) == {
        "channel": "C42",
        "text": "Your refund was sent today.",
        "thread_ts": "1700000000.000100",
        "metadata": {
            "event_type": "escalator_reply",
            "event_payload": {"idempotency_key": "agent:s2", "case_id": CASE},
        },
    }
    assert slack.headers["authorization"] == "Bearer xoxb-1"
    forum = by_path["/forum/posts.json"]
    assert json.loads(forum.body) == {"topic_id": 1234, "raw": "Your refund was sent today."}
    assert (forum.headers["api-key"], forum.headers["api-username"]) == ("dk", "support")
    hook = by_path["/hook"]
    signed = f"{hook.headers['x-escalator-timestamp']}.".encode() + hook.body
    expected = hmac.new(b"hook-secret", signed, hashlib.sha256).hexdigest()
    assert hook.headers["x-escalator-signature"] == f"sha256={expected}"
    document = json.loads(hook.body)
    assert (document["idempotency_key"], document["recipient"], document["case_id"]) == (
        "agent:s4",
        "visitor-9",
        CASE,
    )


def test_server_errors_are_retried_until_the_reply_is_delivered(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with http_peer(statuses=[503, 500, 200]) as hook:
        config = reply_hook(hook.url)
        publish(kafka_bootstrap, topics, reply_event("r1", "webform", recipient="v1"))
        with running(kafka_bootstrap, topics, config, attempts=5):
            calls = hook.wait_for(3)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert len(calls) == 3
    assert {call.headers["idempotency-key"] for call in calls} == {"agent:r1"}
    records = consume_until(kafka_bootstrap, topics.case_events, 1)
    assert [json.loads(r.value or b"")["type"] for r in records] == ["message.appended"]


def test_a_failure_that_persists_becomes_a_reply_failed_event(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with http_peer(statuses=[500]) as hook:
        config = reply_hook(hook.url)
        publish(
            kafka_bootstrap,
            topics,
            reply_event("f1", "chat", recipient="v1"),
            reply_event("f2", "email", recipient="ana@example.com"),  # no SMTP relay set
        )
        with running(kafka_bootstrap, topics, config, attempts=3):
            failed = failed_events(kafka_bootstrap, topics, 2, "reply.failed")
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert len(hook.calls) == 3  # three attempts, then given up
    by_key = {event.payload["message_key"]: event for event in failed}
    assert by_key["agent:f1"].payload["reason"] == "http_5xx"
    assert by_key["agent:f1"].payload["attempts"] == 3
    assert by_key["agent:f1"].event_id == event_id_for(CASE, "reply.failed", "agent:f1")
    assert by_key["agent:f2"].payload["reason"] == "not_configured"
    assert by_key["agent:f2"].payload["attempts"] == 1  # permanent: not retried
    assert "not delivered" in by_key["agent:f1"].reason


def test_escalation_notifications_go_to_slack_and_email(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with http_peer() as slack, smtp_peer() as mail_server:
        notify = NotifyConfig(
            slack_webhooks={"team-leads": slack.url + "/services/T/B/X"},
            emails={"team-leads": ["lead@acme.test", "deputy@acme.test"]},
            mail_from="escalator@acme.test",
            smtp=SmtpRelay(mail_server.host, mail_server.port),
        )
        publish(kafka_bootstrap, topics, escalated_event(["team-leads", "nobody"]))
        with running(kafka_bootstrap, topics, {}, notify):
            [call] = slack.wait_for(1)
            [(envelope, mail)] = mail_server.wait_for(1)
            [failed] = failed_events(kafka_bootstrap, topics, 1, "notification.failed")
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    text = json.loads(call.body)["text"]
    assert CASE in text and "first_response breached" in text and "tier2" in text
    assert sorted(envelope.rcpt_tos) == ["deputy@acme.test", "lead@acme.test"]
    assert mail["Auto-Submitted"] == "auto-generated"
    assert CASE in mail["Subject"]
    assert failed.payload["target"] == "nobody"
    assert failed.payload["reason"] == "not_configured"


def test_reply_mail_without_a_customer_message_id_starts_no_false_thread() -> None:
    settings = EmailSettings(reply_from="help@acme.test", smtp_relay_host="127.0.0.1")
    event = reply_event(
        "n1", "email", recipient="ana@example.com", subject="Re: [#C-AB2CD3EF4G] help"
    )
    event.payload["message"]["in_reply_to"] = "sha256:0f3a"  # the customer's mail had no id
    reply = reply_in(event)
    assert reply is not None
    mail = EmailSender(settings).email_message(reply)
    assert mail["In-Reply-To"] is None and mail["References"] is None
    assert mail["Subject"] == "Re: [#C-AB2CD3EF4G] help"  # the reference is not repeated
