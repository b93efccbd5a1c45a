"""Fuzzing every HTTP entry point of the ingress: the message API and each signed webhook.

Whatever the body, the ingress answers 2xx, or a 4xx whose JSON names the problem; never a
5xx, never a crash. Webhook bodies are signed with the configured secrets, so the handlers
behind the signature check (the part a provider, or anyone holding a secret, reaches) get
the hostile input, not only the signature check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.channels.discourse import discourse_signature
from connectors.channels.meta import meta_signature
from connectors.channels.twilio import twilio_signature
from connectors.channels.webhook import webhook_signature
from connectors.channels.x import x_signature
from connectors.publisher import KafkaPublisher
from schemas import Topics
from tests.connectors.test_channels import CONFIG, PUBLIC_URL, build
from tests.fuzz.strategies import BODIES, FUZZ, JSON
from tests.kafka_support import create_topics

pytestmark = pytest.mark.kafka

Request = dict[str, Any]


@pytest.fixture(scope="module")
async def ingress(kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    """The ingress with every channel configured, publishing to the real broker."""
    topics = Topics("fuzz-http.")
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    transport = httpx.ASGITransport(app=build(publisher, topics))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as http:
        yield http
    publisher.close()


def _json(body: bytes, headers: dict[str, str]) -> Request:
    return {"content": body, "headers": {"content-type": "application/json", **headers}}


def _generic(body: bytes) -> Request:
    stamp = str(int(time.time()))
    secret = CONFIG.webhook_secret or ""
    return _json(
        body,
        {
            "X-Escalator-Timestamp": stamp,
            "X-Escalator-Signature": webhook_signature(secret, stamp, body),
        },
    )


def _slack(body: bytes) -> Request:
    # Slack's documented scheme, over bytes (slack_sdk's helper only takes UTF-8 text)
    stamp = str(int(time.time()))
    base = b"v0:" + stamp.encode() + b":" + body
    secret = (CONFIG.slack_signing_secret or "").encode()
    signature = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
    return _json(body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature or ""})


def _meta(body: bytes) -> Request:
    return _json(body, {"X-Hub-Signature-256": meta_signature(CONFIG.meta_app_secret or "", body)})


def _x(body: bytes) -> Request:
    secret = CONFIG.x_consumer_secret or ""
    return _json(body, {"X-Twitter-Webhooks-Signature": x_signature(secret, body)})


def _discourse(body: bytes) -> Request:
    signature = discourse_signature(CONFIG.discourse_secret or "", body)
    return _json(
        body, {"X-Discourse-Event-Signature": signature, "X-Discourse-Event": "post_created"}
    )


SIGNED: dict[str, tuple[str, Callable[[bytes], Request]]] = {
    "generic": ("/v1/channels/webhook", _generic),
    "slack": ("/v1/channels/slack/events", _slack),
    "meta": ("/v1/channels/meta", _meta),
    "x": ("/v1/channels/x", _x),
    "discourse": ("/v1/channels/discourse", _discourse),
}


TWILIO_FIELDS = ("Body", "From", "To", "MessageSid", "NumMedia", "MediaUrl0", "SmsStatus")
TWILIO_FORMS = st.dictionaries(
    st.sampled_from(TWILIO_FIELDS), st.text(max_size=200), max_size=len(TWILIO_FIELDS)
) | st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=6)
"""Twilio's form fields with any values, or any form at all."""


def assert_handled(response: httpx.Response) -> None:
    """A 2xx, or a 4xx that says why; nothing else."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        document = response.json()
        assert isinstance(document, dict) and (document.get("detail") or document.get("error"))


@FUZZ
@given(body=BODIES)
async def test_the_message_api_answers_any_body(ingress: httpx.AsyncClient, body: bytes) -> None:
    response = await ingress.post(
        "/v1/messages", content=body, headers={"content-type": "application/json"}
    )
    assert_handled(response)


@pytest.mark.parametrize("channel", sorted(SIGNED))
@FUZZ
@given(body=BODIES)
async def test_every_signed_webhook_answers_any_body(
    ingress: httpx.AsyncClient, channel: str, body: bytes
) -> None:
    path, sign = SIGNED[channel]
    response = await ingress.post(path, **sign(body))
    assert_handled(response)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "Body",
                "From",
                "To",
                "MessageSid",
                "NumMedia",
                "MediaUrl0",
                "MediaContentType0",
                "SmsStatus",
                "AccountSid",
            ]
        ),
        st.text(max_size=200),
        max_size=9,
    )
    | st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=6)
)
async def test_twilio_answers_any_signed_form(
    ingress: httpx.AsyncClient, params: dict[str, str]
) -> None:
    url = f"{PUBLIC_URL}/v1/channels/twilio"
    signature = twilio_signature(
        CONFIG.twilio_auth_token or "", url, {key: [value] for key, value in params.items()}
    )
    response = await ingress.post(
        "/v1/channels/twilio",
        content=urlencode(params),
        headers={
            "X-Twilio-Signature": signature,
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code < 500, (response.status_code, response.text[:500])


@FUZZ
@given(body=JSON)
async def test_unsigned_bodies_are_refused_everywhere(
    ingress: httpx.AsyncClient, body: Any
) -> None:
    for path, _sign in SIGNED.values():
        response = await ingress.post(
            path, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (path, response.status_code)
