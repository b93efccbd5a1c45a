"""The generic signed JSON webhook, both ways: web chat, web forms, anything custom.

In: `POST /v1/channels/webhook`.
The body is one inbound message in the contract's JSON, or an array of them. The sender signs
it: `X-Escalator-Timestamp` is the unix time in seconds and `X-Escalator-Signature` is
`sha256=` + hex HMAC-SHA256(secret, `{timestamp}.{body}`). A timestamp outside the tolerance
window is a replay and refused; a replay inside it is recognised by its signature (the
replay window of `_replay`), acknowledged and dropped.

Out: replies on these channels, and on every channel no other plugin answers, are `POST`ed
as JSON (`reply_document`) to `ESCALATOR_REPLY_WEBHOOK_URL`, signed the same way with
`ESCALATOR_REPLY_WEBHOOK_SECRET` and carrying `Idempotency-Key`.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.channels._http import MessageSink, Outcome, Rejection, handle, json_body
from connectors.channels._plugin import ChannelPlugin, HttpSender, Inbound
from connectors.channels._signing import hmac_sha256_hex, require_fresh, require_signature
from connectors.http_ingress import MAX_BATCH
from connectors.outbound._headers import header_token
from connectors.outbound._model import DeliveryError, Reply
from connectors.outbound.senders import post
from schemas import InboundMessage

PATH = "/v1/channels/webhook"
SIGNATURE_HEADER = "X-Escalator-Signature"
TIMESTAMP_HEADER = "X-Escalator-Timestamp"


class WebhookSettings(BaseSettings):
    """The generic webhook (`ESCALATOR_WEBHOOK_SECRET` in, `ESCALATOR_REPLY_WEBHOOK_*` out)."""

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_", extra="ignore")

    webhook_secret: SecretStr | None = None
    reply_webhook_url: str | None = Field(
        default=None, description="Where replies on every other channel (chat, webform, …) go."
    )
    reply_webhook_secret: SecretStr | None = None


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature a sender puts in `X-Escalator-Signature`."""
    return "sha256=" + hmac_sha256_hex(secret, timestamp.encode("ascii") + b"." + body)


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """`X-Escalator-Timestamp` and `X-Escalator-Signature` as the inbound webhook checks them."""
    timestamp = str(int(now if now is not None else time.time()))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: webhook_signature(secret, timestamp, body),
    }


def verify(
    secret: str, signature: str | None, timestamp: str | None, body: bytes, tolerance: int
) -> None:
    """Raise a 401 Rejection unless the body is signed with `secret` and fresh enough."""
    if not timestamp or not timestamp.strip().isdigit():
        raise Rejection(401, "missing_timestamp", f"{TIMESTAMP_HEADER} is missing or not a number")
    require_signature(
        signature, webhook_signature(secret, timestamp.strip(), body), SIGNATURE_HEADER
    )
    require_fresh(timestamp, TIMESTAMP_HEADER, tolerance)


def normalise(body: bytes) -> Outcome:
    """The contract messages in the body; 400 naming index, field and problem otherwise."""
    document = json_body(body)
    items = document if isinstance(document, list) else [document]
    if not items:
        raise Rejection(400, "empty_batch", "the batch holds no message")
    if len(items) > MAX_BATCH:
        raise Rejection(413, "batch_too_large", f"at most {MAX_BATCH} messages per request")
    return Outcome(messages=[InboundMessage.model_validate(item) for item in items])


def router(
    secret: str, tolerance_seconds: int, sink: MessageSink, max_body_bytes: int
) -> APIRouter:
    """The generic webhook route."""
    api = APIRouter()

    async def verify_and_normalise(request: Request, body: bytes) -> Outcome:
        signature = request.headers.get(SIGNATURE_HEADER)
        verify(secret, signature, request.headers.get(TIMESTAMP_HEADER), body, tolerance_seconds)
        return replace(normalise(body), delivery_id=signature)

    @api.post(PATH)
    async def generic_webhook(request: Request) -> Response:
        """Receive signed contract messages from a web chat, a form or any custom source."""
        return await handle(request, "webhook", sink, max_body_bytes, verify_and_normalise)

    return api


def reply_document(reply: Reply) -> dict[str, Any]:
    """The JSON the reply webhook receives."""
    return {
        "idempotency_key": reply.key,
        "case_id": reply.case_id,
        "channel": reply.channel,
        "recipient": reply.recipient,
        "thread_ref": reply.thread_ref,
        "in_reply_to": reply.in_reply_to,
        "subject": reply.subject,
        "text": reply.text,
        "agent_id": reply.agent_id,
        "sent_at": reply.at.isoformat(),
        "auto_submitted": reply.auto_submitted,
    }


class WebhookSender(HttpSender[WebhookSettings]):
    """Posts replies, signed, to the reply webhook."""

    def send(self, reply: Reply) -> None:
        """Post the reply document, or raise DeliveryError."""
        url, secret = self.settings.reply_webhook_url, self.settings.reply_webhook_secret
        if not (url and secret):
            raise DeliveryError(
                "not_configured",
                f"no sender for channel {reply.channel!r}: set ESCALATOR_REPLY_WEBHOOK_URL "
                "and ESCALATOR_REPLY_WEBHOOK_SECRET",
                permanent=True,
            )
        body = json.dumps(reply_document(reply), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": header_token(reply.key),
            **signed_headers(secret.get_secret_value(), body),
        }
        post(self.client, url, content=body, headers=headers)


def inbound(settings: WebhookSettings, context: Inbound) -> APIRouter | None:
    """The generic webhook route, when its secret is set."""
    if settings.webhook_secret is None:
        return None
    return router(
        settings.webhook_secret.get_secret_value(),
        context.tolerance_seconds,
        context.sink,
        context.max_body_bytes,
    )


PLUGIN = ChannelPlugin(
    name="webhook",
    channels=("chat", "webform", "voice"),
    settings=WebhookSettings,
    inbound=inbound,
    outbound=WebhookSender,
    answers_other_channels=True,
)
"""The generic webhook as a channel plugin (it also answers channels nobody else does)."""
