"""Attacks on the signed channel webhooks that need no secret: an oracle that signs what the
attacker asks, an unsigned header that changes what a signed body means, and replays.

Each test plays the attacker against the ingress as deployed (real broker, the channel routers
the composition root mounts) and asserts that the attack no longer lands.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from prometheus_client import REGISTRY
from twilio.request_validator import RequestValidator

from connectors.channels.discourse import discourse_signature
from connectors.channels.meta import meta_signature
from connectors.channels.webhook import webhook_signature
from connectors.channels.x import x_signature
from connectors.email.webhook import mailgun_signature
from escalator.connector_wiring import build_ingress_app
from escalator.settings import ChannelSettings, KafkaSettings, Settings
from schemas import InboundMessage, Topics
from tests.connectors.channel_samples import (
    DISCOURSE_POST_CREATED,
    MESSENGER_MESSAGE,
    TWILIO_SMS,
    X_TWEET_CREATE,
)
from tests.kafka_support import consume_until

PUBLIC_URL = "https://help.example.com"
SECRETS = {
    "ESCALATOR_TWILIO_AUTH_TOKEN": "twilio-token",
    "ESCALATOR_PUBLIC_URL": PUBLIC_URL,
    "ESCALATOR_META_APP_SECRET": "meta-app-secret",
    "ESCALATOR_META_VERIFY_TOKEN": "meta-verify",
    "ESCALATOR_X_CONSUMER_SECRET": "x-consumer-secret",
    "ESCALATOR_DISCOURSE_SECRET": "discourse-secret",
    "ESCALATOR_WEBHOOK_SECRET": "webhook-secret",
    "ESCALATOR_EMAIL_WEBHOOK_SECRET": "email-secret",
}


@pytest.fixture
async def ingress(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The ingress app as `escalator connect http` builds it, every channel on."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ESCALATOR_TOPIC_PREFIX", topic_prefix)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    app = build_ingress_app(Settings(), KafkaSettings(), ChannelSettings())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as http,
    ):
        yield http


def published(bootstrap: str, topics: Topics, count: int) -> list[InboundMessage]:
    return [
        InboundMessage.model_validate_json(record.value or b"")
        for record in consume_until(bootstrap, topics.inbound, count)
    ]


# --- X: the CRC check as a signing oracle ---------------------------------------------------


async def test_x_crc_does_not_sign_a_body_the_attacker_then_posts(
    ingress: httpx.AsyncClient,
) -> None:
    forged = json.dumps(
        {
            "for_user_id": "2244994945",
            "tweet_create_events": [
                {
                    "id_str": "1",
                    "text": "forged through the CRC",
                    "user": {"id_str": "666", "screen_name": "mallory"},
                }
            ],
        }
    )
    crc = await ingress.get("/v1/channels/x", params={"crc_token": forged})
    signature = crc.json().get("response_token") or "sha256=none"
    answer = await ingress.post(
        "/v1/channels/x",
        content=forged.encode(),
        headers={"X-Twitter-Webhooks-Signature": signature},
    )
    assert answer.status_code == 401, answer.text  # the forged delivery is not taken
    assert crc.status_code == 400, crc.text  # a JSON body is no token X would send


async def test_x_crc_still_answers_the_tokens_x_sends(ingress: httpx.AsyncClient) -> None:
    token = base64.urlsafe_b64encode(hashlib.sha256(b"x").digest()).decode()
    crc = await ingress.get("/v1/channels/x", params={"crc_token": token})
    assert crc.status_code == 200
    assert crc.json() == {"response_token": x_signature("x-consumer-secret", token.encode())}
    too_long = await ingress.get("/v1/channels/x", params={"crc_token": "a" * 300})
    assert too_long.status_code == 400


# --- Discourse: the event type outside the signature ----------------------------------------


def discourse_headers(body: bytes, event: str, event_type: str = "post") -> dict[str, str]:
    return {
        "X-Discourse-Event-Signature": discourse_signature("discourse-secret", body),
        "X-Discourse-Event-Type": event_type,
        "X-Discourse-Event": event,
        "content-type": "application/json",
    }


async def test_discourse_signed_post_replayed_as_accepted_solution_is_no_answer(
    ingress: httpx.AsyncClient,
) -> None:
    body = json.dumps(DISCOURSE_POST_CREATED).encode()  # a customer's own signed post
    answer = await ingress.post(
        "/v1/channels/discourse",
        content=body,
        headers=discourse_headers(body, "accepted_solution", "solved"),
    )
    assert answer.status_code in (200, 401), answer.text
    assert answer.status_code == 401 or answer.json()["accepted"] == 0, answer.text
    keys = [m["message_key"] for m in answer.json().get("messages", [])]
    assert not any("accepted" in key for key in keys)


async def test_discourse_accepted_solution_comes_from_the_signed_solved_payload(
    ingress: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    # what the Solved plugin sends: the post serializer under the "solved" key
    solved = json.dumps({"solved": DISCOURSE_POST_CREATED["post"]}).encode()
    answer = await ingress.post(
        "/v1/channels/discourse",
        content=solved,
        headers=discourse_headers(solved, "accepted_solution", "solved"),
    )
    assert answer.status_code == 200, answer.text
    [message] = published(kafka_bootstrap, topics, 1)
    assert message.metadata["accepted_answer"] is True
    # the same signed "solved" body with its header turned into a new post is no new post
    answer = await ingress.post(
        "/v1/channels/discourse",
        content=solved,
        headers=discourse_headers(solved, "post_created"),
    )
    assert answer.status_code in (200, 401)
    assert answer.status_code == 401 or answer.json()["accepted"] == 0, answer.text


async def test_discourse_solved_payload_that_denies_acceptance_is_refused(
    ingress: httpx.AsyncClient,
) -> None:
    post = {**DISCOURSE_POST_CREATED["post"], "accepted_answer": False}
    unaccepted = json.dumps({"solved": post}).encode()  # an unaccepted_solution delivery
    answer = await ingress.post(
        "/v1/channels/discourse",
        content=unaccepted,
        headers=discourse_headers(unaccepted, "accepted_solution", "solved"),
    )
    assert answer.status_code == 401, answer.text


# --- Replays of deliveries that carry no signed timestamp -----------------------------------


def replayed_count(channel: str) -> float:
    labels = {"channel": channel, "outcome": "replayed"}
    return REGISTRY.get_sample_value("escalator_channel_requests_total", labels) or 0.0


def twilio_delivery() -> dict[str, Any]:
    params = {**TWILIO_SMS, "MessageSid": "SMreplay1"}
    signature = RequestValidator("twilio-token").compute_signature(
        f"{PUBLIC_URL}/v1/channels/twilio", params
    )
    return {
        "content": urlencode(params),
        "headers": {
            "X-Twilio-Signature": signature,
            "content-type": "application/x-www-form-urlencoded",
        },
    }


def meta_delivery() -> dict[str, Any]:
    body = json.dumps(MESSENGER_MESSAGE).encode()
    return {
        "content": body,
        "headers": {"X-Hub-Signature-256": meta_signature("meta-app-secret", body)},
    }


def x_delivery() -> dict[str, Any]:
    body = json.dumps(X_TWEET_CREATE).encode()
    return {
        "content": body,
        "headers": {"X-Twitter-Webhooks-Signature": x_signature("x-consumer-secret", body)},
    }


def discourse_delivery() -> dict[str, Any]:
    body = json.dumps(DISCOURSE_POST_CREATED).encode()
    return {"content": body, "headers": discourse_headers(body, "post_created")}


def generic_delivery() -> dict[str, Any]:
    body = json.dumps(
        {
            "channel": "chat",
            "external_id": "chat-replay-1",
            "sender": "visitor-1",
            "text": "hello",
            "sent_at": "2026-11-20T09:30:00Z",
        }
    ).encode()
    now = str(int(time.time()))
    return {
        "content": body,
        "headers": {
            "X-Escalator-Timestamp": now,
            "X-Escalator-Signature": webhook_signature("webhook-secret", now, body),
            "content-type": "application/json",
        },
    }


def mail(message_id: str) -> str:
    return (
        f"From: Ann <ann@example.com>\r\nTo: help@example.com\r\nSubject: Parcel\r\n"
        f"Message-ID: <{message_id}>\r\nDate: Fri, 20 Nov 2026 09:30:00 +0000\r\n\r\n"
        "Where is my parcel?\r\n"
    )


def sendgrid_delivery() -> dict[str, Any]:
    basic = base64.b64encode(b"escalator:email-secret").decode()
    return {
        "data": {"email": mail("sendgrid-replay@example.com")},
        "headers": {"authorization": f"Basic {basic}"},
    }


def mailgun_delivery() -> dict[str, Any]:
    now = str(int(time.time()))
    token = "b" * 50
    fields = {
        "timestamp": now,
        "token": token,
        "signature": mailgun_signature("email-secret", now, token),
        "body-mime": mail("mailgun-replay@example.com"),
    }
    return {"files": {name: (None, value) for name, value in fields.items()}}


DELIVERIES = {
    "twilio": ("/v1/channels/twilio", twilio_delivery),
    "meta": ("/v1/channels/meta", meta_delivery),
    "x": ("/v1/channels/x", x_delivery),
    "discourse": ("/v1/channels/discourse", discourse_delivery),
    "webhook": ("/v1/channels/webhook", generic_delivery),
    "email": ("/v1/channels/email/inbound", sendgrid_delivery),
}


@pytest.mark.parametrize("channel", sorted(DELIVERIES))
async def test_a_replayed_delivery_is_acknowledged_dropped_and_counted(
    ingress: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics, channel: str
) -> None:
    path, delivery = DELIVERIES[channel]
    request = delivery()
    first = await ingress.post(path, **request)
    assert first.status_code == 200, first.text
    assert len(published(kafka_bootstrap, topics, 1)) == 1
    before = replayed_count(channel)
    replay = await ingress.post(path, **request)
    assert replay.status_code == 200, replay.text  # acknowledged, so the provider stops
    if channel != "twilio":  # Twilio is answered with its TwiML document either way
        assert replay.json()["accepted"] == 0, replay.text
        assert replay.json()["ignored"] == "replayed delivery"
    assert replayed_count(channel) == before + 1


async def test_a_replayed_mailgun_delivery_is_dropped(
    ingress: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    request = mailgun_delivery()
    assert (await ingress.post("/v1/channels/email/inbound", **request)).status_code == 200
    replay = await ingress.post("/v1/channels/email/inbound", **request)
    assert (replay.status_code, replay.json()["accepted"]) == (200, 0), replay.text
    assert len(published(kafka_bootstrap, topics, 1)) == 1
