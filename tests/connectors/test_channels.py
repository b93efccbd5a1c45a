"""Channel webhooks end to end on the real broker: provider documentation samples, signed with
the providers' own libraries where they publish one (twilio, slack_sdk), plus forged, missing,
malformed, oversize and unknown input for every channel."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic_settings import BaseSettings
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator

from connectors.channels import MessageSink
from connectors.channels.discourse import DiscourseSettings, discourse_signature
from connectors.channels.meta import MetaSettings, meta_signature
from connectors.channels.slack import SlackSettings
from connectors.channels.twilio import TwilioSettings, twilio_signature
from connectors.channels.webhook import WebhookSettings, webhook_signature
from connectors.channels.x import XSettings, x_signature
from connectors.email.plugin import EmailSettings
from connectors.http_ingress import create_app
from connectors.ingress_auth import IngressAuth
from connectors.publisher import KafkaPublisher
from schemas import InboundMessage, Topics
from tests.connectors.channel_samples import (
    DISCOURSE_POST_CREATED,
    INSTAGRAM_COMMENT,
    MESSENGER_MESSAGE,
    SLACK_MESSAGE_EVENT,
    TWILIO_SMS,
    TWILIO_WHATSAPP,
    X_DM,
    X_TWEET_CREATE,
)
from tests.connectors.plugin_support import channel_routers
from tests.kafka_support import consume_until, create_topics

PUBLIC_URL = "https://help.example.com"


@dataclass(frozen=True)
class ChannelConfig:
    """The secrets the tests sign with (None: that channel off), as the plugins' settings."""

    twilio_auth_token: str | None = None
    public_url: str | None = None
    slack_signing_secret: str | None = None
    meta_app_secret: str | None = None
    meta_verify_token: str | None = None
    x_consumer_secret: str | None = None
    discourse_secret: str | None = None
    discourse_api_username: str = "system"
    webhook_secret: str | None = None
    email_webhook_secret: str | None = None

    def providers(self) -> dict[str, BaseSettings]:
        """Each plugin's settings holding these secrets."""
        return {
            "twilio": TwilioSettings(auth_token=self.twilio_auth_token, public_url=self.public_url),
            "slack": SlackSettings(signing_secret=self.slack_signing_secret),
            "meta": MetaSettings(
                app_secret=self.meta_app_secret, verify_token=self.meta_verify_token
            ),
            "x": XSettings(consumer_secret=self.x_consumer_secret),
            "discourse": DiscourseSettings(
                secret=self.discourse_secret, api_username=self.discourse_api_username
            ),
            "webhook": WebhookSettings(webhook_secret=self.webhook_secret),
            "email": EmailSettings(email_webhook_secret=self.email_webhook_secret),
        }


CONFIG = ChannelConfig(
    twilio_auth_token="12345",
    public_url=PUBLIC_URL,
    slack_signing_secret="8f742231b10e8888abcd99yyyzzz85a5",
    meta_app_secret="meta-app-secret",
    meta_verify_token="meta-verify",
    x_consumer_secret="x-consumer-secret",
    discourse_secret="discourse-secret",
    discourse_api_username="support-bot",
    webhook_secret="webhook-secret",
    email_webhook_secret="email-secret",
)
LIMIT = 64 * 1024


def build(publisher: KafkaPublisher, topics: Topics, config: ChannelConfig = CONFIG) -> Any:
    routers = channel_routers(MessageSink(publisher, topics.inbound), LIMIT, **config.providers())
    return create_app(
        publisher, topics, LIMIT, list(routers.values()), auth=IngressAuth.without_keys()
    )


@pytest.fixture
async def client(kafka_bootstrap: str, topics: Topics) -> AsyncIterator[httpx.AsyncClient]:
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    transport = httpx.ASGITransport(app=build(publisher, topics))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as http:
        yield http
    publisher.close()


def published(bootstrap: str, topics: Topics, count: int) -> list[InboundMessage]:
    records = consume_until(bootstrap, topics.inbound, count)
    return [InboundMessage.model_validate_json(r.value or b"") for r in records]


# --- Twilio ---------------------------------------------------------------------------------


def twilio_post(params: dict[str, str], token: str = "12345") -> dict[str, Any]:
    signature = RequestValidator(token).compute_signature(
        f"{PUBLIC_URL}/v1/channels/twilio", params
    )
    return {
        "content": urlencode(params),
        "headers": {
            "X-Twilio-Signature": signature,
            "content-type": "application/x-www-form-urlencoded",
        },
    }


def test_our_twilio_signature_is_the_official_one() -> None:
    url = f"{PUBLIC_URL}/v1/channels/twilio?a=1"
    ours = twilio_signature("12345", url, {k: [v] for k, v in TWILIO_SMS.items()})
    assert RequestValidator("12345").validate(url, TWILIO_SMS, ours)


async def test_twilio_sms_and_whatsapp(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    answer = await client.post("/v1/channels/twilio", **twilio_post(TWILIO_SMS))
    assert answer.status_code == 200, answer.text
    assert answer.text.endswith("<Response></Response>")
    answer = await client.post("/v1/channels/twilio", **twilio_post(TWILIO_WHATSAPP))
    assert answer.status_code == 200
    sms, whatsapp = sorted(published(kafka_bootstrap, topics, 2), key=lambda m: m.channel)
    assert (sms.channel, sms.sender, sms.text) == ("sms", "+15558675310", "Hello from Twilio")
    assert sms.external_id == TWILIO_SMS["MessageSid"]
    assert sms.customer.phone == "+15558675310"
    assert (whatsapp.channel, whatsapp.sender) == ("whatsapp", "+14155238886")
    assert whatsapp.customer.name == "Ann"
    [media] = whatsapp.attachments
    assert media.content_type == "image/jpeg"


async def test_twilio_forged_missing_malformed_and_status_callbacks(
    client: httpx.AsyncClient,
) -> None:
    forged = twilio_post(TWILIO_SMS, token="not-the-token")
    assert (await client.post("/v1/channels/twilio", **forged)).status_code == 401
    unsigned = twilio_post(TWILIO_SMS)
    del unsigned["headers"]["X-Twilio-Signature"]
    answer = await client.post("/v1/channels/twilio", **unsigned)
    assert (answer.status_code, answer.json()["error"]) == (401, "missing_signature")
    # a valid signature over the wrong URL (query added by someone in between) is forged
    wrong_url = twilio_post(TWILIO_SMS)
    assert (await client.post("/v1/channels/twilio?x=1", **wrong_url)).status_code == 401
    no_sender = twilio_post({k: v for k, v in TWILIO_SMS.items() if k != "From"})
    answer = await client.post("/v1/channels/twilio", **no_sender)
    assert answer.status_code == 400
    assert "From" in answer.json()["detail"]
    status = {"MessageSid": "SM1", "From": "+1555", "MessageStatus": "delivered"}
    answer = await client.post("/v1/channels/twilio", **twilio_post(status))
    assert answer.status_code == 200  # acknowledged, nothing published


# --- Slack ----------------------------------------------------------------------------------


def slack_post(payload: Any, secret: str = CONFIG.slack_signing_secret or "", **extra: str) -> Any:
    body = json.dumps(payload).encode()
    timestamp = extra.pop("timestamp", str(int(time.time())))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or "",
        "content-type": "application/json",
        **extra,
    }
    return {"content": body, "headers": headers}


async def test_slack_challenge_message_and_retry(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    challenge = {
        "token": "x",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    answer = await client.post("/v1/channels/slack/events", **slack_post(challenge))
    assert answer.json() == {"challenge": challenge["challenge"]}
    first = await client.post("/v1/channels/slack/events", **slack_post(SLACK_MESSAGE_EVENT))
    retry = await client.post(
        "/v1/channels/slack/events",
        **slack_post(
            SLACK_MESSAGE_EVENT,
            **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
        ),
    )
    assert first.status_code == retry.status_code == 200
    assert first.json()["messages"] == retry.json()["messages"]  # same idempotency key
    messages = published(kafka_bootstrap, topics, 2)
    assert {m.message_key for m in messages} == {"slack:C123ABC456:1355517523.000005"}
    assert messages[0].sender == "U123ABC456"
    assert messages[0].text == "Live long and prospect."
    assert messages[0].thread_ref == "C123ABC456:1355517523.000005"


async def test_slack_refuses_replays_forgeries_and_ignores_other_events(
    client: httpx.AsyncClient,
) -> None:
    stale = slack_post(SLACK_MESSAGE_EVENT, timestamp=str(int(time.time()) - 301))
    answer = await client.post("/v1/channels/slack/events", **stale)
    assert (answer.status_code, answer.json()["error"]) == (401, "stale_timestamp")
    forged = slack_post(SLACK_MESSAGE_EVENT, secret="wrong")
    assert (await client.post("/v1/channels/slack/events", **forged)).status_code == 401
    unsigned = slack_post(SLACK_MESSAGE_EVENT)
    del unsigned["headers"]["X-Slack-Signature"]
    assert (await client.post("/v1/channels/slack/events", **unsigned)).status_code == 401
    reaction = {**SLACK_MESSAGE_EVENT, "event": {"type": "reaction_added", "user": "U1"}}
    answer = await client.post("/v1/channels/slack/events", **slack_post(reaction))
    assert (answer.status_code, answer.json()["accepted"]) == (200, 0)
    bot = {**SLACK_MESSAGE_EVENT, "event": {**SLACK_MESSAGE_EVENT["event"], "bot_id": "B1"}}
    assert (await client.post("/v1/channels/slack/events", **slack_post(bot))).json()[
        "accepted"
    ] == 0
    broken = {**SLACK_MESSAGE_EVENT, "event": {"type": "message", "text": "no user"}}
    assert (await client.post("/v1/channels/slack/events", **slack_post(broken))).status_code == 400
    body = slack_post(SLACK_MESSAGE_EVENT)
    body["content"] = b"[not json"
    body["headers"]["X-Slack-Signature"] = SignatureVerifier(
        CONFIG.slack_signing_secret or ""
    ).generate_signature(timestamp=body["headers"]["X-Slack-Request-Timestamp"], body=b"[not json")
    answer = await client.post("/v1/channels/slack/events", **body)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_json")


def test_slack_sdk_accepts_our_signature() -> None:
    from connectors.channels.slack import slack_signature

    body, timestamp = b'{"a":1}', str(int(time.time()))
    ours = slack_signature(CONFIG.slack_signing_secret or "", timestamp, body)
    assert SignatureVerifier(CONFIG.slack_signing_secret or "").is_valid(body, timestamp, ours)


# --- Meta, X, Discourse, generic webhook ------------------------------------------------------


def signed(body: Any, header: str, signature: str) -> dict[str, Any]:
    return {"content": body, "headers": {header: signature, "content-type": "application/json"}}


async def test_meta_handshake_messages_and_mentions(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "meta-verify",
        "hub.challenge": "1158201444",
    }
    answer = await client.get("/v1/channels/meta", params=query)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    wrong = await client.get("/v1/channels/meta", params={**query, "hub.verify_token": "no"})
    assert wrong.status_code == 403
    for payload in (MESSENGER_MESSAGE, INSTAGRAM_COMMENT):
        body = json.dumps(payload).encode()
        answer = await client.post(
            "/v1/channels/meta",
            **signed(body, "X-Hub-Signature-256", meta_signature("meta-app-secret", body)),
        )
        assert answer.status_code == 200, answer.text
    messages = {m.channel: m for m in published(kafka_bootstrap, topics, 2)}
    assert messages["facebook"].text == "hello, world!"
    assert messages["facebook"].external_id.startswith("mid.")
    assert messages["instagram"].metadata["kind"] == "comments"
    body = json.dumps(MESSENGER_MESSAGE).encode()
    forged = signed(body, "X-Hub-Signature-256", meta_signature("wrong", body))
    assert (await client.post("/v1/channels/meta", **forged)).status_code == 401
    read = {
        "object": "page",
        "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"}, "read": {"watermark": 1}}]}],
    }
    body = json.dumps(read).encode()
    answer = await client.post(
        "/v1/channels/meta",
        **signed(body, "X-Hub-Signature-256", meta_signature("meta-app-secret", body)),
    )
    assert (answer.status_code, answer.json()["accepted"]) == (200, 0)
    body = b'{"object": "page", "entry": 5}'
    answer = await client.post(
        "/v1/channels/meta",
        **signed(body, "X-Hub-Signature-256", meta_signature("meta-app-secret", body)),
    )
    assert answer.status_code == 400


async def test_x_crc_tweets_and_dms(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    answer = await client.get("/v1/channels/x", params={"crc_token": "challenge"})
    assert answer.json() == {"response_token": x_signature("x-consumer-secret", b"challenge")}
    for payload in (X_TWEET_CREATE, X_DM):
        body = json.dumps(payload).encode()
        answer = await client.post(
            "/v1/channels/x",
            **signed(body, "X-Twitter-Webhooks-Signature", x_signature("x-consumer-secret", body)),
        )
        assert (answer.status_code, answer.json()["accepted"]) == (200, 1), answer.text
    tweet, dm = sorted(published(kafka_bootstrap, topics, 2), key=lambda m: m.external_id)
    assert tweet.sender == "@customer" and tweet.metadata["addressed"] is False  # listening
    assert dm.external_id.startswith("dm:") and dm.text == "Hello World!"
    body = json.dumps(X_TWEET_CREATE).encode()
    forged = signed(body, "X-Twitter-Webhooks-Signature", x_signature("wrong", body))
    assert (await client.post("/v1/channels/x", **forged)).status_code == 401
    likes = json.dumps({"for_user_id": "1", "favorite_events": [{}]}).encode()
    answer = await client.post(
        "/v1/channels/x",
        **signed(likes, "X-Twitter-Webhooks-Signature", x_signature("x-consumer-secret", likes)),
    )
    assert answer.json()["ignored"] == "favorite_events"


async def test_discourse_post_and_other_events(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    body = json.dumps(DISCOURSE_POST_CREATED).encode()
    headers = {
        "X-Discourse-Event-Signature": discourse_signature("discourse-secret", body),
        "X-Discourse-Event-Type": "post",
        "X-Discourse-Event": "post_created",
        "content-type": "application/json",
    }
    answer = await client.post("/v1/channels/discourse", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    [message] = published(kafka_bootstrap, topics, 1)
    assert (message.channel, message.thread_ref, message.sender) == ("community", "7", "bob")
    assert message.subject == "How do I reset my password?"
    ping = await client.post(
        "/v1/channels/discourse", content=body, headers={**headers, "X-Discourse-Event": "ping"}
    )
    assert ping.json()["accepted"] == 0
    forged = {**headers, "X-Discourse-Event-Signature": discourse_signature("wrong", body)}
    assert (
        await client.post("/v1/channels/discourse", content=body, headers=forged)
    ).status_code == 401
    ours = {**DISCOURSE_POST_CREATED, "post": {**DISCOURSE_POST_CREATED["post"], "id": 99}}
    ours["post"]["username"] = "Support-Bot"  # the API user our replies are posted as
    echo = json.dumps(ours).encode()
    answer = await client.post(
        "/v1/channels/discourse",
        content=echo,
        headers={
            **headers,
            "X-Discourse-Event-Signature": discourse_signature("discourse-secret", echo),
        },
    )
    assert answer.json() == {"accepted": 0, "messages": [], "ignored": "our own reply"}
    # Solved sends the post under its event type's key, as Discourse wraps every payload
    solved = json.dumps({"solved": DISCOURSE_POST_CREATED["post"]}).encode()
    answer = await client.post(
        "/v1/channels/discourse",
        content=solved,
        headers={
            **headers,
            "X-Discourse-Event-Type": "solved",
            "X-Discourse-Event": "accepted_solution",
            "X-Discourse-Event-Signature": discourse_signature("discourse-secret", solved),
        },
    )
    assert answer.json()["messages"] == [
        {"message_key": f"community:accepted:{DISCOURSE_POST_CREATED['post']['id']}"}
    ]
    accepted = [
        m for m in published(kafka_bootstrap, topics, 2) if m.metadata.get("accepted_answer")
    ]
    assert len(accepted) == 1 and accepted[0].thread_ref == "7"


def webhook_post(payload: Any, secret: str = "webhook-secret", age: int = 0) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time()) - age)
    return {
        "content": body,
        "headers": {
            "X-Escalator-Timestamp": timestamp,
            "X-Escalator-Signature": webhook_signature(secret, timestamp, body),
            "content-type": "application/json",
        },
    }


CHAT = {
    "channel": "chat",
    "external_id": "chat-42",
    "sender": "visitor-9",
    "text": "Is anyone there?",
    "sent_at": "2026-11-20T09:30:00Z",
}


async def test_generic_webhook(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    answer = await client.post("/v1/channels/webhook", **webhook_post(CHAT))
    assert answer.status_code == 200
    [message] = published(kafka_bootstrap, topics, 1)
    assert message.message_key == "chat:chat-42"
    stale = await client.post("/v1/channels/webhook", **webhook_post(CHAT, age=301))
    assert (stale.status_code, stale.json()["error"]) == (401, "stale_timestamp")
    forged = await client.post("/v1/channels/webhook", **webhook_post(CHAT, secret="guess"))
    assert forged.status_code == 401
    bad = await client.post("/v1/channels/webhook", **webhook_post({**CHAT, "sent_at": "soon"}))
    assert bad.status_code == 400
    assert bad.json()["detail"][0]["field"] == "sent_at"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/channels/twilio",
        "/v1/channels/slack/events",
        "/v1/channels/meta",
        "/v1/channels/x",
        "/v1/channels/discourse",
        "/v1/channels/webhook",
        "/v1/channels/email/inbound",
    ],
)
async def test_every_channel_refuses_oversize_and_unsigned_bodies(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.post(path, content=b"x" * (LIMIT + 1))
    assert (answer.status_code, answer.json()["error"]) == (413, "too_large")
    answer = await client.post(
        path, content=b'{"object": "page"}', headers={"content-type": "application/json"}
    )
    assert answer.status_code in (400, 401)  # never published, never a crash
    answer = await client.post(path, content=b"\xff\xfe\x00garbage")
    assert answer.status_code in (400, 401)


async def test_unconfigured_channels_are_not_served(kafka_bootstrap: str, topics: Topics) -> None:
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    app = build(publisher, topics, ChannelConfig(webhook_secret="only-this"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://i"
    ) as http:
        assert (await http.post("/v1/channels/slack/events", content=b"{}")).status_code == 404
        assert (await http.get("/v1/channels/meta")).status_code == 404
        assert (await http.post("/v1/channels/webhook", content=b"{}")).status_code == 401
    publisher.close()


async def test_kafka_unreachable_gives_503_with_retry_after(topics: Topics) -> None:
    publisher = KafkaPublisher({"bootstrap.servers": "127.0.0.1:1"}, delivery_timeout_seconds=1.0)
    app = build(publisher, topics)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://i"
    ) as http:
        answer = await http.post("/v1/channels/webhook", **webhook_post(CHAT))
        twilio = await http.post("/v1/channels/twilio", **twilio_post(TWILIO_SMS))
    publisher.close()
    for response in (answer, twilio):
        assert response.status_code == 503
        assert response.headers["retry-after"].isdigit()


# --- Bounds: deep JSON and records too large to publish ----------------------------------------


def signed_webhook_body(body: bytes, secret: str = "webhook-secret") -> dict[str, Any]:
    timestamp = str(int(time.time()))
    return {
        "content": body,
        "headers": {
            "X-Escalator-Timestamp": timestamp,
            "X-Escalator-Signature": webhook_signature(secret, timestamp, body),
            "content-type": "application/json",
        },
    }


@pytest.mark.parametrize("depth", [250, 10_000])
async def test_a_deeply_nested_webhook_body_gets_400_too_deep(
    client: httpx.AsyncClient, depth: int
) -> None:
    body = b"[" * depth + b"]" * depth
    answer = await client.post("/v1/channels/webhook", **signed_webhook_body(body))
    assert (answer.status_code, answer.json()["error"]) == (400, "too_deep")
    assert "nested more than 200 levels" in answer.json()["detail"]


async def test_a_webhook_message_too_large_to_publish_gets_413_not_503(
    kafka_bootstrap: str, topics: Topics
) -> None:
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    sink = MessageSink(publisher, topics.inbound)
    config = ChannelConfig(webhook_secret="webhook-secret")
    routers = channel_routers(sink, 1_048_576, **config.providers())
    app = create_app(
        publisher, topics, 1_048_576, list(routers.values()), auth=IngressAuth.without_keys()
    )
    # every field within its bound, the record over what Kafka takes (about 1,004,000 bytes)
    message = {
        **CHAT,
        "text": "😀" * 100_000,
        "metadata": {"pad": "p" * 500_000},
        "attachments": [{"filename": "f", "url": "u" * 8_000}] * 13,
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingress"
    ) as http:
        body = json.dumps(message, ensure_ascii=False).encode()
        answer = await http.post("/v1/channels/webhook", **signed_webhook_body(body))
    publisher.close()
    assert (answer.status_code, answer.json()["error"]) == (413, "record_too_large")
    [rejected] = answer.json()["detail"]
    assert rejected["index"] == 0 and "at most 983040 fit" in rejected["problem"]
    records = consume_until(kafka_bootstrap, topics.inbound, 1, timeout=3, raise_on_timeout=False)
    assert records == []
