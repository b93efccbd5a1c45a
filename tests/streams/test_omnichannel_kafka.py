"""One customer, one case, across channels — through the real broker, ingress and worker.

An email thread, a logged-in web chat that verifies the customer's phone, a tweet quoting
the case reference and an SMS from that phone all land in one case; an auto-reply in the
thread becomes a note and an auto-reply with no case opens nothing; a webhook delivered
twice makes one message.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from connectors.channels.webhook import webhook_signature
from connectors.channels.x import x_signature
from schemas import CaseEvent, Topics
from tests.connectors.channel_samples import TWILIO_SMS, X_TWEET_CREATE
from tests.connectors.peers import smtp_peer
from tests.kafka_support import Record, consume_until
from tests.stack_support import Stack, escalator_stack

PUBLIC_URL = "https://help.example.test"
SECRETS = {
    "ESCALATOR_PUBLIC_URL": PUBLIC_URL,
    "ESCALATOR_TWILIO_AUTH_TOKEN": "twilio-token",
    "ESCALATOR_X_CONSUMER_SECRET": "x-secret",
    "ESCALATOR_WEBHOOK_SECRET": "webhook-secret",
    "ESCALATOR_EMAIL_WEBHOOK_SECRET": "email-secret",
}


def signed_json(secret: str, body: bytes, content_type: str) -> dict[str, Any]:
    now = str(int(time.time()))
    return {
        "content": body,
        "headers": {
            "content-type": content_type,
            "X-Escalator-Timestamp": now,
            "X-Escalator-Signature": webhook_signature(secret, now, body),
        },
    }


def send_mail(stack: Stack, sender: str, message_id: str, **headers: str) -> None:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "help@acme.test"
    mail["Subject"] = headers.pop("Subject", "Charged twice for order A-1234")
    mail["Message-ID"] = f"<{message_id}>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(headers.get("body", "I was charged twice for order A-1234."))
    answer = httpx.post(
        f"{stack.ingress_url}/v1/channels/email/inbound",
        **signed_json("email-secret", mail.as_bytes(), "message/rfc822"),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def send_chat(stack: Stack) -> None:
    message = {
        "channel": "chat",
        "external_id": "chat-1",
        "sender": "visitor-9",
        "text": "I'm logged in now, please call me back",
        "sent_at": datetime.now(UTC).isoformat(),
        "customer": {
            "email": "Ana@Example.com",
            "phone": "+49 151 2345 6789",
            "verified": ["email", "phone"],
        },
    }
    body = json.dumps(message).encode()
    answer = httpx.post(
        f"{stack.ingress_url}/v1/channels/webhook",
        **signed_json("webhook-secret", body, "application/json"),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def send_tweet(stack: Stack, text: str, tweet_id: str = "1050118621198921999") -> None:
    payload = copy.deepcopy(X_TWEET_CREATE)
    tweet = payload["tweet_create_events"][0]
    tweet.update({"id_str": tweet_id, "text": text})
    tweet["user"].update({"screen_name": "ana_l", "id_str": "777"})
    body = json.dumps(payload).encode()
    answer = httpx.post(
        f"{stack.ingress_url}/v1/channels/x",
        content=body,
        headers={
            "X-Twitter-Webhooks-Signature": x_signature("x-secret", body),
            "content-type": "application/json",
        },
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text


def send_sms(stack: Stack) -> None:
    params = {**TWILIO_SMS, "From": "+4915123456789", "Body": "Any news on my refund?"}
    signature = RequestValidator("twilio-token").compute_signature(
        f"{PUBLIC_URL}/v1/channels/twilio", params
    )
    answer = httpx.post(
        f"{stack.ingress_url}/v1/channels/twilio",
        content=urlencode(params),
        headers={
            "X-Twilio-Signature": signature,
            "content-type": "application/x-www-form-urlencoded",
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def events(records: list[Record]) -> list[CaseEvent]:
    unique: dict[str, CaseEvent] = {}
    for record in records:
        event = CaseEvent.model_validate_json(record.value or b"")
        unique.setdefault(event.event_id, event)
    return sorted(unique.values(), key=lambda e: e.at)


def appended(bootstrap: str, topics: Topics, count: int) -> list[CaseEvent]:
    """The first `count` distinct message.appended events, once that many exist."""

    def enough(records: list[Record]) -> bool:
        return sum(1 for e in events(list(records)) if e.type == "message.appended") >= count

    found = events(consume_until(bootstrap, topics.case_events, enough, timeout=90))
    return [e for e in found if e.type == "message.appended"]


def test_one_customer_one_case_across_email_chat_twitter_and_sms(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(kafka_bootstrap, topic_prefix, tmp_path, **SECRETS) as stack:
        stack.start_worker()
        stack.start_ingress()
        send_mail(stack, "Ana Lopez <ana@example.com>", "m1@example.com")
        [first] = appended(kafka_bootstrap, topics, 1)
        case_id = first.case_id
        send_mail(
            stack,
            "ana@example.com",
            "m2@example.com",
            Subject="Re: Charged twice for order A-1234",
            In_Reply_To="<m1@example.com>",
            References="<m1@example.com>",
        )
        appended(kafka_bootstrap, topics, 2)
        send_chat(stack)
        appended(kafka_bootstrap, topics, 3)
        send_tweet(stack, f"@acme still no refund, case {case_id}")
        appended(kafka_bootstrap, topics, 4)
        send_sms(stack)
        send_sms(stack)  # the provider retried: the same signed delivery again
        appended(kafka_bootstrap, topics, 5)
        send_mail(
            stack,
            "ana@example.com",
            "ooo-1@example.com",
            Subject="Automatic reply: Charged twice",
            In_Reply_To="<m2@example.com>",
            References="<m1@example.com> <m2@example.com>",
            Auto_Submitted="auto-replied",
        )
        send_mail(stack, "bob@example.com", "ooo-2@example.com", Auto_Submitted="auto-replied")
        found = appended(kafka_bootstrap, topics, 6)
        deadline = time.monotonic() + 60
        metrics = stack.worker_metrics()
        while time.monotonic() < deadline and not metrics.get(
            "escalator_messages_not_threaded_total"
        ):
            time.sleep(0.5)
            metrics = stack.worker_metrics()
        all_events = events(consume_until(kafka_bootstrap, topics.case_events, 1))
        ingress = httpx.get(f"{stack.ingress_url}/metrics", timeout=10).text
    assert {e.case_id for e in found} == {case_id}
    by_key = {e.payload["message_key"]: e for e in found}
    assert set(by_key) == {
        "email:m1@example.com",
        "email:m2@example.com",
        "chat:chat-1",
        "twitter:1050118621198921999",
        f"sms:{TWILIO_SMS['MessageSid']}",
        "email:ooo-1@example.com",
    }
    assert by_key["email:m2@example.com"].payload["evidence"] == "same thread (m1@example.com)"
    chat = by_key["chat:chat-1"].payload
    assert "verified handle email:ana@example.com" in chat["identity_evidence"]
    assert "linked phone:+4915123456789" in chat["identity_evidence"]
    tweet = by_key["twitter:1050118621198921999"].payload
    assert tweet["evidence"] == f"case reference {case_id} in the text"
    sms = by_key[f"sms:{TWILIO_SMS['MessageSid']}"].payload
    assert "phone:+4915123456789 is linked to" in sms["identity_evidence"]
    assert sms["evidence"] == "customer has an open case"
    note = by_key["email:ooo-1@example.com"].payload["message"]
    assert (note["direction"], note["tags"]) == ("note", ["auto_reply"])
    assert [e.case_id for e in all_events if e.type == "case.opened"] == [case_id]
    assert metrics["escalator_messages_not_threaded_total"] == 1  # bob's auto-reply
    # the SMS delivered twice: the ingress's replay window drops the second delivery
    assert 'escalator_channel_requests_total{channel="twilio",outcome="replayed"} 1.0' in ingress


def test_agent_reply_goes_back_by_email_and_the_answer_threads_into_the_case(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with (
        smtp_peer() as mail_server,
        escalator_stack(kafka_bootstrap, topic_prefix, tmp_path, **SECRETS) as stack,
    ):
        stack.start_worker()
        stack.start_ingress()
        stack.start_replies(
            ESCALATOR_REPLY_FROM="help@acme.test",
            ESCALATOR_SMTP_RELAY_HOST=mail_server.host,
            ESCALATOR_SMTP_RELAY_PORT=str(mail_server.port),
            ESCALATOR_REPLIES_FROM_BEGINNING="true",
        )
        send_mail(stack, "Ana Lopez <ana@example.com>", "q1@example.com")
        [question] = appended(kafka_bootstrap, topics, 1)
        case_id = question.case_id
        reply = ["--agent", "agent-7", "--text", "We refunded the second charge."]
        subprocess.run(
            [sys.executable, "-m", "escalator", "cases", "act", case_id, "reply", *reply],
            env={**os.environ, **stack.env},
            check=True,
            capture_output=True,
        )
        [(envelope, mail)] = mail_server.wait_for(1, timeout=90)
        assert envelope.rcpt_tos == ["ana@example.com"]
        assert mail["Subject"] == f"Re: Charged twice for order A-1234 [#{case_id}]"
        assert mail["In-Reply-To"] == "<q1@example.com>"
        assert mail.get_content().strip() == "We refunded the second charge."
        # the customer answers the reply from another address: the thread still finds the case
        send_mail(
            stack,
            "ana.private@example.org",
            "q2@example.com",
            Subject=str(mail["Subject"]),
            In_Reply_To=str(mail["Message-ID"]),
            References=f"<q1@example.com> {mail['Message-ID']}",
        )
        found = appended(kafka_bootstrap, topics, 3)
        sent = processes_metric(stack.replies_url, "escalator_replies_sent_total")
    answer = [e for e in found if e.payload["message_key"] == "email:q2@example.com"]
    assert answer and answer[0].case_id == case_id
    assert answer[0].payload["evidence"] == f"case reference {case_id} in the subject"
    assert sent == 1


def processes_metric(url: str, name: str) -> float:
    from escalator.demo import processes

    return processes.scrape(f"{url}/metrics").get(name, 0.0)


def customers_cli(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "escalator", "customers", *args],
        env={**os.environ, **stack.env},
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def test_merge_and_split_change_where_later_messages_go(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(kafka_bootstrap, topic_prefix, tmp_path, **SECRETS) as stack:
        stack.start_worker()
        stack.start_ingress()
        send_mail(stack, "ana@example.com", "e1@example.com")
        [mail] = appended(kafka_bootstrap, topics, 1)
        send_tweet(stack, "@acme my refund is late", tweet_id="1")
        tweet = [e for e in appended(kafka_bootstrap, topics, 2) if e.case_id != mail.case_id]
        assert len(tweet) == 1  # no evidence links the two: two customers, two cases
        ana, tweeter = mail.payload["customer_id"], tweet[0].payload["customer_id"]
        out = customers_cli(stack, "merge", tweeter, ana, "--reason", "same person, confirmed")
        assert out.strip() == f"merged {tweeter} into {ana}"
        [record] = consume_until(kafka_bootstrap, topics.identity, 1)
        assert record.key == f"customer:{tweeter}".encode()
        assert record.json()["reason"] == "same person, confirmed"
        time.sleep(2)  # every worker follows the identity topic (polled every 0.5 s)
        send_tweet(stack, "@acme any news?", tweet_id="2")
        merged = appended(kafka_bootstrap, topics, 3)[-1]
        customers_cli(stack, "split", tweeter, "--reason", "not her after all")
        consume_until(kafka_bootstrap, topics.identity, 2)
        time.sleep(2)
        send_tweet(stack, "@acme hello again", tweet_id="3")
        split = appended(kafka_bootstrap, topics, 4)[-1]
    assert merged.payload["message_key"] == "twitter:2"
    assert merged.case_id == mail.case_id
    assert merged.payload["customer_id"] == ana
    assert "merged into" in merged.payload["identity_evidence"]
    assert "same person, confirmed" in merged.payload["identity_evidence"]
    assert split.payload["message_key"] == "twitter:3"
    assert (split.case_id, split.payload["customer_id"]) == (tweet[0].case_id, tweeter)
