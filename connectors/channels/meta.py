"""Meta: Messenger and Instagram webhooks in (`/v1/channels/meta`), the Graph API out.

`GET` answers the subscription handshake: `hub.challenge` is echoed when `hub.verify_token`
equals `ESCALATOR_META_VERIFY_TOKEN`. `POST` bodies are signed `sha256=` + hex
HMAC-SHA256(app secret, body) in `X-Hub-Signature-256`. Direct messages, Instagram comments
and mentions, and Page feed posts and comments become messages; mentions of the company
that are not addressed to it count too. Our own echoes, reads and deliveries are ignored.

Replies (with `ESCALATOR_META_PAGE_ACCESS_TOKEN`; without it they go to the reply webhook)
use the Graph API's documented endpoints, form-encoded with the token in the body (never in
a URL, which logs keep): a direct message (`thread_ref` `<account>:<user>`) through the Send
API `POST /{version}/me/messages` (`recipient`, `messaging_type=RESPONSE`, `message`), which
serves Messenger and Instagram alike; an Instagram comment on our media through
`POST /{comment-id}/replies`; an Instagram @mention (`thread_ref` `mention:<account>:<media>`)
through `POST /{ig-user-id}/mentions` (`media_id`, and `comment_id` when a comment mentioned
us); a Page post or comment through `POST /{object-id}/comments`.
Graph errors (`{"error": {"code", "is_transient", ...}}`) with a throttling code or
`is_transient` are retried; other 4xx answers are final.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.channels._http import MessageSink, Outcome, Rejection, handle, json_object
from connectors.channels._metrics import CHANNEL_REQUESTS
from connectors.channels._plugin import ChannelPlugin, ConfigurationError, HttpSender, Inbound
from connectors.channels._signing import hmac_sha256_hex, require_signature
from connectors.http_ingress import problem
from connectors.outbound._model import DeliveryError, Reply
from connectors.outbound.senders import check_response, post, retry_after
from schemas import Attachment, CustomerAttributes, InboundMessage

PATH = "/v1/channels/meta"
_CHANNEL_OF_OBJECT = {"page": "facebook", "instagram": "instagram"}


class MetaSettings(BaseSettings):
    """Meta (`ESCALATOR_META_*`): the app's webhook secrets and the Page's access token."""

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_META_", extra="ignore")

    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    page_access_token: SecretStr | None = None
    """Page access token (`pages_messaging`; for Instagram, of the Page linked to the account,
    with `instagram_manage_messages` and `instagram_manage_comments`)."""
    graph_api_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v25.0"


def meta_signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` Meta sends for `body`."""
    return "sha256=" + hmac_sha256_hex(app_secret, body)


def normalise(payload: dict[str, Any]) -> Outcome:
    """Every customer message, comment and mention in a Meta webhook delivery."""
    channel = _CHANNEL_OF_OBJECT.get(str(payload.get("object")))
    if channel is None:
        return Outcome(ignored=f"object {payload.get('object')!r}")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise Rejection(400, "malformed", "the delivery has no entry list")
    messages: list[InboundMessage] = []
    skipped: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise Rejection(400, "malformed", "an entry is not an object")
        account = str(entry.get("id", ""))
        for event in entry.get("messaging") or []:
            found = _messaging_event(channel, account, event)
            messages.extend(found)
            if not found:
                skipped.append("messaging event")
        for change in entry.get("changes") or []:
            found = _change(channel, account, change)
            messages.extend(found)
            if not found:
                skipped.append(f"change {change.get('field')!r}")
    if messages:
        return Outcome(messages=messages)
    return Outcome(ignored=", ".join(sorted(set(skipped))) or "empty delivery")


def _messaging_event(channel: str, account: str, event: dict[str, Any]) -> list[InboundMessage]:
    message = event.get("message")
    if not isinstance(message, dict) or message.get("is_echo"):
        return []  # deliveries, reads, reactions, postbacks, and what our own page sent
    sender = str(event["sender"]["id"])
    attachments = [
        Attachment(
            filename=str(item.get("type") or "attachment"),
            content_type=str(item.get("type") or "application/octet-stream"),
            url=(item.get("payload") or {}).get("url"),
        )
        for item in message.get("attachments") or []
        if isinstance(item, dict)
    ]
    return [
        InboundMessage(
            channel=channel,
            external_id=str(message["mid"]),
            sender=sender,
            text=str(message.get("text") or ""),
            sent_at=_from_millis(event.get("timestamp")),
            thread_ref=f"{account}:{sender}",
            in_reply_to=(message.get("reply_to") or {}).get("mid"),
            attachments=attachments,
            metadata={"kind": "direct_message", "account_id": account, "addressed": True},
        )
    ]


def _change(channel: str, account: str, change: dict[str, Any]) -> list[InboundMessage]:
    field, value = change.get("field"), change.get("value")
    if not isinstance(value, dict):
        return []
    if channel == "instagram" and field == "mentions":
        return [_mention(account, value)]
    if channel == "instagram" and field in ("comments", "live_comments"):
        author = value.get("from") or {}
        if str(author.get("id")) == account:
            return []  # our own comment
        media = value.get("media") or {}
        return [
            InboundMessage(
                channel=channel,
                external_id=str(value.get("id") or value.get("comment_id")),
                sender=str(author.get("username") or author.get("id") or value.get("media_id")),
                text=str(value.get("text") or ""),
                sent_at=datetime.now(UTC),
                thread_ref=str(media.get("id") or value.get("media_id") or value.get("id")),
                metadata={"kind": str(field), "account_id": account, "addressed": True},
            )
        ]
    if channel == "facebook" and field == "feed" and value.get("verb") == "add":
        if value.get("item") not in ("post", "comment", "status") or not value.get("message"):
            return []
        author = value.get("from") or {}
        if str(author.get("id")) == account:
            return []
        item_id = str(value.get("comment_id") or value.get("post_id"))
        return [
            InboundMessage(
                channel=channel,
                external_id=item_id,
                sender=str(author.get("id")),
                text=str(value["message"]),
                sent_at=_from_seconds(value.get("created_time")),
                thread_ref=str(value.get("post_id") or item_id),
                customer=CustomerAttributes(name=author.get("name") or None),
                metadata={"kind": f"feed_{value['item']}", "account_id": account},
            )
        ]
    return []


def _mention(account: str, value: dict[str, Any]) -> InboundMessage:
    """An Instagram @mention of the account, in a comment or a caption on someone's media.

    Its value holds only ids (`media_id`, and `comment_id` for a comment); `thread_ref`
    (`mention:<account>:<media>`) keeps what the mentions API needs to answer it.
    """
    media = str(value.get("media_id") or (value.get("media") or {}).get("id") or "")
    comment = value.get("comment_id") or value.get("id")
    return InboundMessage(
        channel="instagram",
        external_id=str(comment) if comment else f"mention:{media}",
        sender=str((value.get("from") or {}).get("username") or media or account),
        text=str(value.get("text") or ""),
        sent_at=datetime.now(UTC),
        thread_ref=f"mention:{account}:{media}",
        metadata={"kind": "mentions", "account_id": account, "addressed": True},
    )


def _from_millis(value: Any) -> datetime:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    return datetime.now(UTC)


def _from_seconds(value: Any) -> datetime:
    return _from_millis(value) if isinstance(value, int | float) else datetime.now(UTC)


def router(app_secret: str, verify_token: str, sink: MessageSink, max_body_bytes: int) -> APIRouter:
    """The Meta webhook routes: the GET handshake and the signed POST deliveries."""
    api = APIRouter()

    @api.get(PATH)
    async def meta_handshake(request: Request) -> Response:
        """Answer Meta's subscription check with `hub.challenge` when the token matches."""
        query = request.query_params
        token = query.get("hub.verify_token") or ""
        if query.get("hub.mode") != "subscribe" or "hub.challenge" not in query:
            CHANNEL_REQUESTS.labels("meta", "malformed").inc()
            return problem(400, "malformed", "expected hub.mode=subscribe and hub.challenge")
        if not hmac.compare_digest(token.encode(), verify_token.encode()):
            CHANNEL_REQUESTS.labels("meta", "unauthorized").inc()
            return problem(403, "invalid_verify_token", "hub.verify_token does not match")
        return PlainTextResponse(query["hub.challenge"])

    async def verify_and_normalise(request: Request, body: bytes) -> Outcome:
        signature = request.headers.get("x-hub-signature-256")
        require_signature(signature, meta_signature(app_secret, body), "X-Hub-Signature-256")
        return replace(normalise(json_object(body)), delivery_id=signature)

    @api.post(PATH)
    async def meta_webhook(request: Request) -> Response:
        """Receive a Messenger or Instagram webhook delivery."""
        return await handle(request, "meta", sink, max_body_bytes, verify_and_normalise)

    return api


_GRAPH_ID = re.compile(r"[0-9]{1,32}(_[0-9]{1,32}){0,2}")
"""A Graph object id: a comment's, a media's, a post's (`<page>_<post>`, `<post>_<comment>`)."""

THROTTLING_CODES = frozenset({4, 17, 32, 613, 80001, 80006})
"""Graph API error codes of rate limits (application, user, Page, custom, Page/Messenger
business use case): worth another try later."""


class MetaSender(HttpSender[MetaSettings]):
    """Replies on Messenger and Instagram through the Graph API."""

    def send(self, reply: Reply) -> None:
        """Send the reply where the customer wrote (a DM, a comment, a post), or raise."""
        token = self.settings.page_access_token
        if token is None:
            raise DeliveryError("not_configured", "set ESCALATOR_META_PAGE_ACCESS_TOKEN", True)
        base = f"{self.settings.graph_api_url.rstrip('/')}/{self.settings.graph_api_version}"
        form: dict[str, str] = {"access_token": token.get_secret_value()}
        thread = reply.thread_ref or ""
        _account, direct, user = thread.partition(":")
        if thread.startswith("mention:"):  # an Instagram @mention: "mention:<account>:<media>"
            url = self._mention(base, thread, reply, form)
        elif direct:  # a direct message: thread_ref is "<page or Instagram account>:<user>"
            recipient = reply.recipient or user
            if not recipient:
                raise DeliveryError("no_recipient", "no Messenger/Instagram user on the case", True)
            url = f"{base}/me/messages"
            form["recipient"] = json.dumps({"id": recipient})
            form["messaging_type"] = "RESPONSE"
            form["message"] = json.dumps({"text": reply.text})
        else:
            target = (reply.in_reply_to or "").strip()
            if not _GRAPH_ID.fullmatch(target):  # it goes into the URL's path
                detail = f"no comment or post to answer ({target!r})"
                raise DeliveryError("no_recipient", detail, True)
            edge = "replies" if reply.channel == "instagram" else "comments"
            url = f"{base}/{target}/{edge}"
            form["message"] = reply.text
        post(self.client, url, check=check_graph_response, data=form)

    @staticmethod
    def _mention(base: str, thread: str, reply: Reply, form: dict[str, str]) -> str:
        """`POST /{ig-user-id}/mentions` with the media, and the comment when one mentioned us."""
        _, account, media = thread.split(":", 2) if thread.count(":") == 2 else ("", "", "")
        if not (_GRAPH_ID.fullmatch(account) and _GRAPH_ID.fullmatch(media)):
            raise DeliveryError("no_recipient", f"no Instagram media to answer ({thread!r})", True)
        form["media_id"] = media
        comment = (reply.in_reply_to or "").strip()
        if _GRAPH_ID.fullmatch(comment):  # a caption mention's message id is "mention:<media>"
            form["comment_id"] = comment
        form["message"] = reply.text
        return f"{base}/{account}/mentions"


def check_graph_response(response: httpx.Response) -> httpx.Response:
    """`check_response`, except that a Graph error with a throttling code or `is_transient`
    is retried whatever its HTTP status (Graph answers most rate limits with a 400)."""
    if response.is_success:
        return response
    try:
        found = response.json().get("error")
    except (ValueError, AttributeError):
        found = None
    if isinstance(found, dict) and (
        found.get("code") in THROTTLING_CODES or found.get("is_transient") is True
    ):
        detail = f"HTTP {response.status_code}: {response.text[:300]}"
        raise DeliveryError("rate_limited", detail, retry_after=retry_after(response))
    return check_response(response)


def inbound(settings: MetaSettings, context: Inbound) -> APIRouter | None:
    """The webhook routes, when both the app secret and the verify token are set."""
    if settings.app_secret is None and settings.verify_token is None:
        return None
    if settings.app_secret is None or settings.verify_token is None:
        raise ConfigurationError(
            "set both ESCALATOR_META_APP_SECRET and ESCALATOR_META_VERIFY_TOKEN"
        )
    return router(
        settings.app_secret.get_secret_value(),
        settings.verify_token.get_secret_value(),
        context.sink,
        context.max_body_bytes,
    )


PLUGIN = ChannelPlugin(
    name="meta",
    channels=("facebook", "instagram"),
    settings=MetaSettings,
    inbound=inbound,
    outbound=lambda settings, client: (
        MetaSender(settings, client) if settings.page_access_token else None
    ),
)
"""Meta (Messenger, Instagram) as a channel plugin; without a Page token, replies go to the
reply webhook."""
