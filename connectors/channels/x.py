"""X (Twitter): the account-activity webhook in (`/v1/channels/x`), the X API v2 out.

`GET ?crc_token=T` answers the challenge-response check with
`{"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, T))}`. `POST` bodies
are signed the same way over the body in `X-Twitter-Webhooks-Signature`. Since both are the
same HMAC, the CRC answers only tokens shaped like the ones X sends (a short URL-safe string,
`CRC_TOKEN`): asked to sign a JSON body it refuses, so it can never mint a POST signature.
Tweets (mentions, replies, quotes, whether or not they @-address the account) and direct
messages become messages on channel `twitter`; the account's own tweets and DMs, likes and
follows are ignored.

Replies (with `ESCALATOR_X_ACCESS_TOKEN`, an OAuth 2.0 user-context token with `tweet.write`
and `dm.write`; without it they go to the reply webhook): a direct message (`thread_ref`
`dm:<account>:<user>`) through `POST /2/dm_conversations/with/{user}/messages`, a tweet
through `POST /2/tweets` with `reply.in_reply_to_tweet_id` = the customer's tweet. A 429 is
retried after `x-rate-limit-reset`; other 4xx answers are final.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.channels._http import MessageSink, Outcome, Rejection, handle, json_object
from connectors.channels._metrics import CHANNEL_REQUESTS
from connectors.channels._plugin import ChannelPlugin, HttpSender, Inbound
from connectors.channels._signing import hmac_sha256_base64, require_signature
from connectors.http_ingress import problem
from connectors.outbound._model import DeliveryError, Reply
from connectors.outbound.senders import json_answer, post
from schemas import CustomerAttributes, InboundMessage

PATH = "/v1/channels/x"
CRC_TOKEN = re.compile(r"[A-Za-z0-9_=-]{1,128}")
"""What a CRC token X sends looks like (URL-safe base64 of random bytes); never a JSON body."""


class XSettings(BaseSettings):
    """X (`ESCALATOR_X_*`): the app's consumer secret (webhook) and the account's API token."""

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_X_", extra="ignore")

    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    """OAuth 2.0 user-context token of the support account (`tweet.write`, `dm.write`)."""
    api_url: str = "https://api.x.com"


def x_signature(consumer_secret: str, payload: bytes) -> str:
    """`sha256=` + base64 HMAC-SHA256: both the CRC response token and the POST signature."""
    return "sha256=" + hmac_sha256_base64(consumer_secret, payload)


def normalise(payload: dict[str, Any]) -> Outcome:
    """The tweets and direct messages of one account-activity delivery."""
    account = str(payload.get("for_user_id") or "")
    if not account:
        raise Rejection(400, "malformed", "for_user_id is missing")
    messages = [
        message
        for tweet in payload.get("tweet_create_events") or []
        if (message := _tweet(account, tweet)) is not None
    ]
    users = payload.get("users") if isinstance(payload.get("users"), dict) else {}
    messages += [
        message
        for event in payload.get("direct_message_events") or []
        if (message := _direct_message(account, event, users or {})) is not None
    ]
    if messages:
        return Outcome(messages=messages)
    kinds = sorted(key for key in payload if key.endswith("_events")) or ["no events"]
    return Outcome(ignored=", ".join(kinds))


def _tweet(account: str, tweet: dict[str, Any]) -> InboundMessage | None:
    user = tweet["user"]
    if str(user["id_str"]) == account or "retweeted_status" in tweet:
        return None  # our own tweets and plain retweets are no customer message
    extended = tweet.get("extended_tweet") or {}
    mentions = (tweet.get("entities") or {}).get("user_mentions") or []
    addressed = tweet.get("in_reply_to_user_id_str") == account or any(
        str(mention.get("id_str")) == account for mention in mentions
    )
    reply_to = tweet.get("in_reply_to_status_id_str")
    return InboundMessage(
        channel="twitter",
        external_id=str(tweet["id_str"]),
        sender=f"@{user['screen_name']}",
        text=str(extended.get("full_text") or tweet.get("text") or ""),
        sent_at=_tweet_time(tweet.get("created_at")),
        thread_ref=f"tweet:{reply_to or tweet['id_str']}",
        in_reply_to=f"tweet:{reply_to}" if reply_to else None,
        customer=CustomerAttributes(name=user.get("name")),
        metadata={"kind": "tweet", "user_id": str(user["id_str"]), "addressed": addressed},
    )


def _direct_message(
    account: str, event: dict[str, Any], users: dict[str, Any]
) -> InboundMessage | None:
    if event.get("type") != "message_create":
        return None
    create = event["message_create"]
    sender_id = str(create["sender_id"])
    if sender_id == account:
        return None  # a DM the account itself sent
    sender = users.get(sender_id) or {}
    handle_ = f"@{sender['screen_name']}" if sender.get("screen_name") else f"x:{sender_id}"
    created = event.get("created_timestamp")
    return InboundMessage(
        channel="twitter",
        external_id=f"dm:{event['id']}",
        sender=handle_,
        text=str(create["message_data"].get("text") or ""),
        sent_at=(
            datetime.fromtimestamp(int(str(created)) / 1000, UTC)
            if str(created).isdigit()
            else datetime.now(UTC)
        ),
        thread_ref=f"dm:{account}:{sender_id}",
        customer=CustomerAttributes(name=sender.get("name")),
        metadata={"kind": "direct_message", "user_id": sender_id, "addressed": True},
    )


def _tweet_time(value: Any) -> datetime:
    if isinstance(value, str):
        try:  # "Wed Oct 10 20:19:24 +0000 2018"
            return datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)
        except ValueError:
            raise Rejection(400, "malformed", f"created_at {value!r} is not a date") from None
    return datetime.now(UTC)


def router(consumer_secret: str, sink: MessageSink, max_body_bytes: int) -> APIRouter:
    """The X account-activity routes: the CRC check and the signed deliveries."""
    api = APIRouter()

    @api.get(PATH)
    async def x_crc(request: Request) -> Response:
        """Answer X's challenge-response check."""
        token = request.query_params.get("crc_token")
        if not token:
            CHANNEL_REQUESTS.labels("x", "malformed").inc()
            return problem(400, "malformed", "the crc_token parameter is missing")
        if not CRC_TOKEN.fullmatch(token):
            CHANNEL_REQUESTS.labels("x", "malformed").inc()
            return problem(400, "malformed", "crc_token is not a token X sends (URL-safe, short)")
        return JSONResponse({"response_token": x_signature(consumer_secret, token.encode())})

    async def verify_and_normalise(request: Request, body: bytes) -> Outcome:
        signature = request.headers.get("x-twitter-webhooks-signature")
        require_signature(
            signature, x_signature(consumer_secret, body), "X-Twitter-Webhooks-Signature"
        )
        return replace(normalise(json_object(body)), delivery_id=signature)

    @api.post(PATH)
    async def x_webhook(request: Request) -> Response:
        """Receive an X account-activity delivery."""
        return await handle(request, "x", sink, max_body_bytes, verify_and_normalise)

    return api


_NUMERIC_ID = re.compile(r"[0-9]{1,25}")


class XSender(HttpSender[XSettings]):
    """Replies to X direct messages and tweets through the X API v2."""

    def send(self, reply: Reply) -> None:
        """Send the reply as a DM or a reply tweet, or raise DeliveryError."""
        token = self.settings.access_token
        if token is None:
            raise DeliveryError("not_configured", "set ESCALATOR_X_ACCESS_TOKEN", True)
        base = self.settings.api_url.rstrip("/")
        thread = reply.thread_ref or ""
        if thread.startswith("dm:"):  # "dm:<account>:<user>"
            participant = thread.rsplit(":", 1)[-1]
            if not _NUMERIC_ID.fullmatch(participant):
                raise DeliveryError("no_recipient", f"no X user on the case ({thread!r})", True)
            url = f"{base}/2/dm_conversations/with/{participant}/messages"
            body: dict[str, Any] = {"text": reply.text}
        else:
            tweet = (reply.in_reply_to or "").strip()
            if not _NUMERIC_ID.fullmatch(tweet):
                raise DeliveryError("no_recipient", f"no tweet to answer ({tweet!r})", True)
            url = f"{base}/2/tweets"
            body = {"text": reply.text, "reply": {"in_reply_to_tweet_id": tweet}}
        answer = post(
            self.client,
            url,
            json=body,
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
        )
        created = json_answer(answer, "X")
        if not isinstance(created.get("data"), dict):  # a 2xx that created nothing
            raise DeliveryError("api_error", f"X: {str(created.get('errors'))[:300]}", True)


def inbound(settings: XSettings, context: Inbound) -> APIRouter | None:
    """The account-activity routes, when the consumer secret is set."""
    if settings.consumer_secret is None:
        return None
    return router(settings.consumer_secret.get_secret_value(), context.sink, context.max_body_bytes)


PLUGIN = ChannelPlugin(
    name="x",
    channels=("twitter",),
    settings=XSettings,
    inbound=inbound,
    outbound=lambda settings, client: XSender(settings, client) if settings.access_token else None,
)
"""X as a channel plugin; without an access token, replies go to the reply webhook."""
