"""The reply service on the real broker: each reply and notification goes out once, and no
record's content stops it (hostile subjects, bad JSON, a sender that raises, a failed commit)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from pydantic_settings import BaseSettings

from connectors.channels.twilio import TwilioSettings
from connectors.channels.webhook import WebhookSettings
from connectors.outbound._acked import AckedWriter
from connectors.outbound._model import Reply
from connectors.outbound.ledger import DeliveryLedger, LedgerBounds, Outcome
from connectors.outbound.notify import Notifier, NotifyConfig
from connectors.outbound.senders import ChannelSenders, ReplySender
from connectors.outbound.service import DeliveryService, RetryPolicy
from kafkaio.blocking import BlockingProducer
from schemas import CaseEvent, Topics
from schemas.ids import event_id_for
from tests.connectors.peers import eventually, http_peer, smtp_peer
from tests.connectors.plugin_support import senders
from tests.connectors.test_outbound import (
    CASE,
    T0,
    all_committed,
    escalated_event,
    failed_events,
    mail_config,
    publish,
    reply_event,
    reply_hook,
)
from tests.kafka_support import consume_until, create_topics, produce


@contextmanager
def service_thread(
    bootstrap: str,
    topics: Topics,
    config: dict[str, BaseSettings],
    notify: NotifyConfig | None = None,
    group_id: str | None = None,
    wrap: Callable[[ChannelSenders], ReplySender] = lambda senders: senders,
    consumer: dict[str, Any] | None = None,
    http_timeout: float = 20.0,
) -> Iterator[tuple[DeliveryService, threading.Thread]]:
    """The service in a thread (from the beginning of cases.events); stopped on exit."""
    create_topics(bootstrap, [topics.case_events, topics.dlq, f"{topics.prefix}replies.deliveries"])
    with httpx.Client(timeout=http_timeout) as client:
        service = DeliveryService(
            {"bootstrap.servers": bootstrap, **(consumer or {})},
            topics,
            wrap(senders(client, **config)),
            Notifier(notify or NotifyConfig(), client),
            RetryPolicy(attempts=3, first_backoff_seconds=0.05, max_backoff_seconds=0.2),
            group_id=group_id,
            from_beginning=True,
        )
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            yield service, thread
        finally:
            service.stop()
            thread.join(timeout=30)


def test_a_subject_with_cr_lf_is_delivered_as_one_line_and_the_service_goes_on(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with smtp_peer() as mail_server:
        publish(
            kafka_bootstrap,
            topics,
            reply_event(
                "h1",
                "email",
                recipient="ana@example.com",
                subject="Charged twice\r\nBcc: thief@evil.test",
            ),
            reply_event("h2", "email", recipient="ana@example.com", subject="Second"),
        )
        with service_thread(
            kafka_bootstrap, topics, mail_config(mail_server.host, mail_server.port)
        ) as (_, thread):
            mails = mail_server.wait_for(2)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
            assert thread.is_alive()
    assert [envelope.rcpt_tos for envelope, _ in mails] == [["ana@example.com"]] * 2
    assert mails[0][1]["Bcc"] is None
    assert mails[0][1]["Subject"] == f"Re: Charged twice Bcc: thief@evil.test [#{CASE}]"


class BrokenSenders:
    """A sender with a bug that some content triggers (here: any reply on `chat`)."""

    def __init__(self, senders: ChannelSenders) -> None:
        self.senders = senders

    def send(self, reply: Reply) -> None:
        if reply.channel == "chat":
            raise RuntimeError("a bug in a sender")
        self.senders.send(reply)


def test_a_sender_that_raises_becomes_a_reply_failed_event_and_the_service_goes_on(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with smtp_peer() as mail_server:
        publish(
            kafka_bootstrap,
            topics,
            reply_event("b1", "chat", recipient="visitor-1"),
            reply_event("b2", "email", recipient="ana@example.com"),
        )
        config = mail_config(mail_server.host, mail_server.port)
        with service_thread(kafka_bootstrap, topics, config, wrap=BrokenSenders) as (_, thread):
            [failed] = failed_events(kafka_bootstrap, topics, 1, "reply.failed")
            assert len(mail_server.wait_for(1)) == 1
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
            assert thread.is_alive()
    assert failed.payload["message_key"] == "agent:b1"
    assert failed.payload["reason"] == "sender_error"
    assert failed.payload["attempts"] == 1
    assert "a bug in a sender" in failed.payload["detail"]


def test_records_it_cannot_read_are_dead_lettered_with_their_bytes_and_it_goes_on(
    kafka_bootstrap: str, topics: Topics
) -> None:
    bad_payload = reply_event("p1", "email").model_dump(mode="json")
    bad_payload["payload"]["message"] = {"text": 42}  # a message.appended it cannot read
    poison = [
        b"\xff not json at all",
        b'{"event_id": "x"}',
        json.dumps(bad_payload).encode(),
    ]
    with smtp_peer() as mail_server:
        create_topics(kafka_bootstrap, [topics.case_events, topics.dlq])
        produce(kafka_bootstrap, topics.case_events, [(CASE.encode(), raw) for raw in poison])
        publish(kafka_bootstrap, topics, reply_event("p2", "email", recipient="ana@example.com"))
        config = mail_config(mail_server.host, mail_server.port)
        with service_thread(kafka_bootstrap, topics, config) as (_, thread):
            letters = consume_until(kafka_bootstrap, topics.dlq, 3)
            assert len(mail_server.wait_for(1)) == 1
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
            assert thread.is_alive()
    documents = [letter.json() for letter in letters]
    assert sorted(base64.b64decode(d["original_b64"]) for d in documents) == sorted(poison)
    assert {d["source_topic"] for d in documents} == {topics.case_events}
    assert all(d["source_offset"] >= 0 and d["reason"] for d in documents)
    assert {d["reason"] for d in documents} >= {"invalid_case_event", "invalid_payload"}
    assert all(letter.header("stage") == b"replies" for letter in letters)


def test_a_reply_and_a_notification_repeated_in_the_log_go_out_once(
    kafka_bootstrap: str, topics: Topics
) -> None:
    reply = reply_event("d1", "email", recipient="ana@example.com")
    escalation = escalated_event(["team-leads"])
    with smtp_peer() as mail_server, http_peer() as slack:
        notify = NotifyConfig(slack_webhooks={"team-leads": slack.url + "/hook"})
        # the worker writes an event again after it is restarted mid-batch
        publish(kafka_bootstrap, topics, reply, escalation, reply, escalation)
        config = mail_config(mail_server.host, mail_server.port)
        with service_thread(kafka_bootstrap, topics, config, notify):
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
            mail_server.wait_for(2, timeout=3)
            slack.wait_for(2, timeout=3)
    assert len(mail_server.mails) == 1
    assert len(slack.calls) == 1


def test_a_restart_with_lost_offsets_sends_nothing_again(
    kafka_bootstrap: str, topics: Topics
) -> None:
    events = [reply_event(f"r{n}", "email", recipient="ana@example.com") for n in range(3)]
    with smtp_peer() as mail_server:
        publish(kafka_bootstrap, topics, *events)
        config = mail_config(mail_server.host, mail_server.port)
        with service_thread(kafka_bootstrap, topics, config):
            assert len(mail_server.wait_for(3)) == 3
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
        # offsets expired, reset by an operator, or a new group: the log is read again
        with service_thread(kafka_bootstrap, topics, config, group_id=f"{topics.prefix}other"):
            assert eventually(
                lambda: all_committed(kafka_bootstrap, topics, f"{topics.prefix}other")
            )
            mail_server.wait_for(4, timeout=3)
    assert len(mail_server.mails) == 3


def test_a_failed_commit_neither_stops_the_service_nor_sends_the_reply_again(
    kafka_bootstrap: str, topics: Topics
) -> None:
    # The mail server takes longer than the consumer may go without polling: the group
    # throws the consumer out mid-send, so committing the record's offset fails.
    short_poll = {"session.timeout.ms": 6000, "max.poll.interval.ms": 6000}
    with smtp_peer() as mail_server:
        mail_server.delay_seconds = 9.0
        publish(kafka_bootstrap, topics, reply_event("c1", "email", recipient="ana@example.com"))
        config = mail_config(mail_server.host, mail_server.port)
        with service_thread(kafka_bootstrap, topics, config, consumer=short_poll) as (_, first):
            assert len(mail_server.wait_for(1)) == 1
            mail_server.delay_seconds = 0.0
            assert eventually(lambda: all_committed(kafka_bootstrap, topics), timeout=60)
            assert first.is_alive()
        with service_thread(kafka_bootstrap, topics, config):  # and a restart after it
            mail_server.wait_for(2, timeout=5)
    assert len(mail_server.mails) == 1


def ledger_for(
    bootstrap: str, topics: Topics, bounds: LedgerBounds | None = None, **kw: Any
) -> DeliveryLedger:
    """A ledger of its own (as a second replica or a restarted service would have)."""
    stop = threading.Event()
    writer = AckedWriter(BlockingProducer({"bootstrap.servers": bootstrap}), RetryPolicy(), stop)
    return DeliveryLedger(
        {"bootstrap.servers": bootstrap}, topics.reply_deliveries, writer, bounds, **kw
    )


def test_a_reply_whose_send_was_interrupted_is_reported_in_doubt_and_not_sent_again(
    kafka_bootstrap: str, topics: Topics
) -> None:
    mail_reply = reply_event("i1", "email", recipient="ana@example.com")
    hook_reply = reply_event("i2", "chat", recipient="visitor-1")
    fresh_reply = reply_event("i3", "email", recipient="ana@example.com")
    create_topics(kafka_bootstrap, [topics.case_events, topics.dlq, topics.reply_deliveries])
    crashed = ledger_for(kafka_bootstrap, topics)
    for event in (mail_reply, hook_reply):  # what a service killed in the middle leaves
        crashed.record(f"reply:{event.event_id}", Outcome.SENDING, CASE, "cases.events/0/0")
    crashed.record(f"reply:{fresh_reply.event_id}", Outcome.UNSENT, CASE, "cases.events/0/1")
    crashed.close()
    with smtp_peer() as mail_server, http_peer() as hook:
        config = {
            **mail_config(mail_server.host, mail_server.port),
            **reply_hook(hook.url),
        }
        publish(kafka_bootstrap, topics, mail_reply, hook_reply, fresh_reply)
        with service_thread(kafka_bootstrap, topics, config):
            failed = failed_events(kafka_bootstrap, topics, 2, "reply.failed")
            assert len(mail_server.wait_for(1)) == 1
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    # a reply that was being handed over may have arrived: reported, never sent again
    assert {event.payload["message_key"] for event in failed} == {"agent:i1", "agent:i2"}
    assert {event.payload["reason"] for event in failed} == {"in_doubt"}
    assert all("in doubt" in event.reason for event in failed)
    assert hook.calls == []
    # one stopped between two tries (`unsent`) is known not to have gone out: it is sent
    assert [str(mail["Message-ID"]) for _, mail in mail_server.mails] == [f"<i3.{CASE}@acme.test>"]


def test_the_ledger_survives_a_restart_and_is_bounded_in_count_and_age(
    kafka_bootstrap: str, topics: Topics
) -> None:
    create_topics(kafka_bootstrap, [topics.reply_deliveries])
    now = [1_900_000_000.0]
    bounds = LedgerBounds(max_entries=50, max_age_seconds=3600)
    first = ledger_for(kafka_bootstrap, topics, bounds, clock=lambda: now[0])
    first.record("reply:old", Outcome.SENT, CASE, "")
    now[0] += 3000
    for n in range(60):
        first.record(f"reply:{n}", Outcome.SENT, CASE, "")
    assert len(first) == 50
    assert first.outcome("reply:old") is None and first.outcome("reply:5") is None
    assert first.outcome("reply:59") is Outcome.SENT
    first.close()
    now[0] += 1000  # "reply:old" is now older than an hour; the others are not
    restarted = ledger_for(kafka_bootstrap, topics, bounds, clock=lambda: now[0])
    assert restarted.catch_up() == 61
    assert len(restarted) == 50
    assert restarted.outcome("reply:59") is Outcome.SENT
    assert restarted.outcome("reply:old") is None
    now[0] += 3600
    assert restarted.outcome("reply:59") is None  # forgotten by age, as the topic's retention
    restarted.close()


def test_a_timeout_after_the_request_went_out_is_reported_in_doubt_not_retried(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with http_peer() as api:
        api.delay_seconds = 2.0  # the provider acts on the call but answers after our timeout
        config: dict[str, BaseSettings] = {
            "twilio": TwilioSettings(account_sid="AC1", auth_token="tok", api_url=api.url),
            "webhook": WebhookSettings(
                reply_webhook_url=api.url + "/hook", reply_webhook_secret="s"
            ),
        }
        publish(
            kafka_bootstrap,
            topics,
            reply_event("t1", "sms", recipient="+4915123456789", thread_ref="+49151>+4930111"),
            reply_event("t2", "chat", recipient="visitor-1"),
        )
        with service_thread(kafka_bootstrap, topics, config, http_timeout=0.5):
            failed = failed_events(kafka_bootstrap, topics, 2, "reply.failed")
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    by_key = {event.payload["message_key"]: event.payload for event in failed}
    # a second try could text the customer twice: one call each, then reported
    assert [by_key[key]["reason"] for key in ("agent:t1", "agent:t2")] == ["in_doubt"] * 2
    assert [by_key[key]["attempts"] for key in ("agent:t1", "agent:t2")] == [1, 1]
    assert sorted(call.path.rsplit("/", 1)[1] for call in api.calls) == ["Messages.json", "hook"]


def test_a_refused_connection_is_retried_since_nothing_went_out(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with http_peer() as hook:
        config = reply_hook(hook.url)
    # the peer is gone: every attempt is refused before a byte of the request is sent
    publish(kafka_bootstrap, topics, reply_event("x1", "chat", recipient="visitor-1"))
    with service_thread(kafka_bootstrap, topics, config):
        [failed] = failed_events(kafka_bootstrap, topics, 1, "reply.failed")
        assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert (failed.payload["reason"], failed.payload["attempts"]) == ("connection", 3)


def test_a_record_too_large_to_copy_is_dead_lettered_by_reference(
    kafka_bootstrap: str, topics: Topics
) -> None:
    huge = b'{"event_id": "' + b"x" * 800_000 + b'"}'  # not a case event, and 800 kB
    with smtp_peer() as mail_server:
        create_topics(kafka_bootstrap, [topics.case_events, topics.dlq])
        produce(kafka_bootstrap, topics.case_events, [(CASE.encode(), huge)])
        publish(kafka_bootstrap, topics, reply_event("l1", "email", recipient="ana@example.com"))
        config = mail_config(mail_server.host, mail_server.port)
        with service_thread(kafka_bootstrap, topics, config):
            [letter] = consume_until(kafka_bootstrap, topics.dlq, 1)
            assert len(mail_server.wait_for(1)) == 1
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    document = letter.json()
    assert document["reason"] == "invalid_case_event"
    assert document["original_b64"] == ""
    where = f"{topics.case_events}/{document['source_partition']}@{document['source_offset']}"
    assert f"original of {len(huge)} bytes not copied; see {where}" in document["detail"]


def test_a_failure_recorded_before_a_crash_is_written_again_identically_never_anew(
    kafka_bootstrap: str, topics: Topics
) -> None:
    reply = reply_event("f1", "email", recipient="ana@example.com")
    failure = CaseEvent(
        event_id=event_id_for(CASE, "reply.failed", "agent:f1"),
        case_id=CASE,
        type="reply.failed",
        at=T0,
        reason="reply agent:f1 on email to ana@example.com not delivered after 6 attempt(s)",
        payload={"message_key": "agent:f1", "reason": "smtp_5xx", "attempts": 6},
    ).model_dump_json()
    create_topics(kafka_bootstrap, [topics.case_events, topics.dlq, topics.reply_deliveries])
    crashed = ledger_for(kafka_bootstrap, topics)  # killed after the ledger, before the event
    crashed.record(f"reply:{reply.event_id}", Outcome.FAILED, CASE, "", failure_event=failure)
    crashed.close()
    with smtp_peer() as mail_server:
        publish(kafka_bootstrap, topics, reply)
        config = mail_config(mail_server.host, mail_server.port)
        with service_thread(kafka_bootstrap, topics, config):
            records = consume_until(kafka_bootstrap, topics.case_events, 2)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert mail_server.mails == []
    assert [record.value for record in records] == [
        reply.model_dump_json().encode(),
        failure.encode(),
    ]
