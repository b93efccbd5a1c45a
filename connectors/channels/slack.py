"""Slack: the Events API in (`POST /v1/channels/slack/events`), `chat.postMessage` out.

Customer-facing Slack Connect channels.

Requests are signed `v0=` + hex HMAC-SHA256(signing secret, `v0:{timestamp}:{body}`) in
`X-Slack-Signature`; a `X-Slack-Request-Timestamp` more than five minutes from now is a
replay and refused. Retries (`X-Slack-Retry-Num`) carry the same message, and the message's
`external_id` is `{channel}:{ts}` (unique per Slack channel), so the pipeline's idempotency
drops a retry, and also the `app_mention` event Slack sends beside the `message` event.
Replies go into the customer's thread, with message metadata carrying our idempotency key
(Slack takes none, but it makes our reply findable in the thread).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.channels._http import MessageSink, Outcome, Rejection, handle, ignored, json_object
from connectors.channels._plugin import ChannelPlugin, HttpSender, Inbound
from connectors.channels._signing import hmac_sha256_hex, require_fresh, require_signature
from connectors.outbound._model import DeliveryError, Reply
from connectors.outbound.senders import json_answer, post
from schemas import Attachment, CustomerAttributes, InboundMessage

PATH = "/v1/channels/slack/events"
REPLAY_WINDOW_SECONDS = 300
_CUSTOMER_SUBTYPES = frozenset({"file_share", "thread_broadcast"})
"""Message subtypes written by a person; edits, joins, bot posts and deletions are not."""


class SlackSettings(BaseSettings):
    """Slack (`ESCALATOR_SLACK_*`): the Events API's signing secret and the bot's token."""

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_SLACK_", extra="ignore")

    signing_secret: SecretStr | None = None
    bot_token: SecretStr | None = Field(default=None, description="xoxb-… with chat:write.")
    api_url: str = "https://slack.com/api"


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` Slack sends for `body` at `timestamp`."""
    return "v0=" + hmac_sha256_hex(signing_secret, b"v0:" + timestamp.encode() + b":" + body)


def normalise(payload: dict[str, Any], retry_num: str | None) -> Outcome:
    """A Slack event envelope as an Outcome: the challenge, a message, or ignored."""
    kind = payload.get("type")
    if kind == "url_verification":
        challenge = payload.get("challenge")
        if not isinstance(challenge, str):
            raise Rejection(400, "malformed", "url_verification without a challenge")
        return ignored("url_verification", JSONResponse({"challenge": challenge}))
    if kind != "event_callback":
        return ignored(f"envelope type {kind!r}")
    event = payload.get("event")
    if not isinstance(event, dict):
        raise Rejection(400, "malformed", "event_callback without an event object")
    event_type = event.get("type")
    if event_type not in ("message", "app_mention"):
        return ignored(f"event type {event_type!r}")
    subtype = event.get("subtype")
    if event.get("bot_id") or (subtype is not None and subtype not in _CUSTOMER_SUBTYPES):
        return ignored(f"message subtype {subtype or 'bot_message'!r}")
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)):
        raise Rejection(400, "malformed", "a message event needs user, channel and ts")
    metadata: dict[str, Any] = {
        "team_id": payload.get("team_id") or event.get("team"),
        "slack_channel": channel,
        "channel_type": event.get("channel_type"),
        "event_id": payload.get("event_id"),
        "event_type": event_type,
    }
    if retry_num is not None:
        metadata["slack_retry_num"] = retry_num
    files = event.get("files")
    files = files if isinstance(files, list) else []
    message = InboundMessage(
        channel="slack",
        external_id=f"{channel}:{ts}",
        sender=user,
        text=str(event.get("text") or ""),
        sent_at=_slack_time(ts),
        thread_ref=f"{channel}:{event.get('thread_ts') or ts}",
        in_reply_to=f"{channel}:{event['thread_ts']}" if event.get("thread_ts") else None,
        customer=CustomerAttributes(),
        attachments=[
            Attachment(
                filename=str(f.get("name") or "file"),
                content_type=str(f.get("mimetype") or "application/octet-stream"),
                size=f.get("size") if isinstance(f.get("size"), int) else None,
                url=f.get("url_private"),
            )
            for f in files
            if isinstance(f, dict)
        ],
        metadata={key: value for key, value in metadata.items() if value is not None},
    )
    return Outcome(messages=[message])


def _slack_time(ts: str) -> datetime:
    try:
        seconds = Decimal(ts)
    except InvalidOperation as exc:
        raise Rejection(400, "malformed", f"ts {ts!r} is not a Slack timestamp") from exc
    return datetime.fromtimestamp(float(seconds), UTC)


def router(signing_secret: str, sink: MessageSink, max_body_bytes: int) -> APIRouter:
    """The Slack Events API route."""
    api = APIRouter()

    async def verify_and_normalise(request: Request, body: bytes) -> Outcome:
        timestamp = request.headers.get("x-slack-request-timestamp")
        if not timestamp or not timestamp.isdigit():
            raise Rejection(401, "missing_timestamp", "X-Slack-Request-Timestamp is missing")
        require_signature(
            request.headers.get("x-slack-signature"),
            slack_signature(signing_secret, timestamp, body),
            "X-Slack-Signature",
        )
        require_fresh(timestamp, "X-Slack-Request-Timestamp", REPLAY_WINDOW_SECONDS)
        return normalise(json_object(body), request.headers.get("x-slack-retry-num"))

    @api.post(PATH)
    async def slack_events(request: Request) -> Response:
        """Receive a Slack Events API delivery (or its URL verification)."""
        return await handle(request, "slack", sink, max_body_bytes, verify_and_normalise)

    return api


class SlackSender(HttpSender[SlackSettings]):
    """Posts replies with `chat.postMessage` in the customer's channel and thread."""

    def send(self, reply: Reply) -> None:
        """Post the reply in its thread, or raise DeliveryError (`ok: false` is permanent
        unless Slack says it is rate limited or unavailable)."""
        if self.settings.bot_token is None:
            raise DeliveryError("not_configured", "set ESCALATOR_SLACK_BOT_TOKEN", True)
        channel, _, thread_ts = (reply.thread_ref or "").partition(":")
        if not channel:
            raise DeliveryError("no_recipient", "no Slack channel on the case", True)
        body: dict[str, Any] = {
            "channel": channel,
            "text": reply.text,
            # Slack has no idempotency key; the metadata makes our reply findable in the thread
            "metadata": {
                "event_type": "escalator_reply",
                "event_payload": {"idempotency_key": reply.key, "case_id": reply.case_id},
            },
        }
        if thread_ts:
            body["thread_ts"] = thread_ts
        answer = post(
            self.client,
            f"{self.settings.api_url.rstrip('/')}/chat.postMessage",
            json=body,
            headers={"Authorization": f"Bearer {self.settings.bot_token.get_secret_value()}"},
        )
        result = json_answer(answer, "Slack")
        if not result.get("ok"):
            error = str(result.get("error") or "unknown")
            transient = error in {"ratelimited", "service_unavailable", "internal_error"}
            raise DeliveryError("api_error", f"Slack: {error}", permanent=not transient)


def inbound(settings: SlackSettings, context: Inbound) -> APIRouter | None:
    """The Events API route, when the signing secret is set."""
    if settings.signing_secret is None:
        return None
    return router(settings.signing_secret.get_secret_value(), context.sink, context.max_body_bytes)


PLUGIN = ChannelPlugin(
    name="slack", channels=("slack",), settings=SlackSettings, inbound=inbound, outbound=SlackSender
)
"""Slack as a channel plugin."""
