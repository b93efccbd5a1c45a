"""Discourse: webhooks for new topics and posts in (channel `community`), `POST /posts.json` out.

`POST /v1/channels/discourse` takes the forum's webhooks; agents' replies are posted into
the topic as `ESCALATOR_DISCOURSE_API_USERNAME`.

Bodies are signed `sha256=` + hex HMAC-SHA256(secret, body) in `X-Discourse-Event-Signature`.
Every new post becomes a message with `thread_ref` = the topic id; a new topic arrives as its
first post (`post_created` with `post_number` 1, which carries the text), so `topic_created`
is acknowledged without a second message. Staff posts are published tagged
`metadata.staff: true` so the stream can treat them as answers, not customer contacts.
Posts by the API user Escalator replies as (`ESCALATOR_DISCOURSE_API_USERNAME`) are our own
replies coming back: acknowledged and ignored, like a Slack bot's own messages.

The `X-Discourse-Event` header is not signed, so it never decides what a body means on its
own. Discourse wraps the payload under its event type (`{"post": ...}` for post events,
`{"solved": ...}` for the Solved plugin's events), and that signed key must agree with the
header: a signed post replayed with `X-Discourse-Event: accepted_solution` is refused (401),
and a `solved` body whose post says `"accepted_answer": false` is no accepted answer.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.channels._http import MessageSink, Outcome, Rejection, handle, json_object
from connectors.channels._plugin import ChannelPlugin, HttpSender, Inbound
from connectors.channels._signing import hmac_sha256_hex, require_signature
from connectors.email._text import html_to_text
from connectors.outbound._model import DeliveryError, Reply
from connectors.outbound.senders import post
from schemas import CustomerAttributes, InboundMessage

PATH = "/v1/channels/discourse"
_REGULAR_POST = 1
"""Discourse's post_type of a normal post (2 moderator action, 3 small action, 4 whisper)."""
_SOLVED_EVENTS = ("accepted_solution", "unaccepted_solution")
"""The Solved plugin's events; Discourse signs their post under the `solved` key."""


class DiscourseSettings(BaseSettings):
    """Discourse (`ESCALATOR_DISCOURSE_*`): the webhook's secret and the API user replies use.

    `api_username` serves both ways: replies are posted as that user, and its posts coming
    back through the webhook are recognised as ours and ignored.
    """

    model_config = SettingsConfigDict(env_prefix="ESCALATOR_DISCOURSE_", extra="ignore")

    secret: SecretStr | None = None
    url: str | None = Field(default=None, description="e.g. https://forum.example.com")
    api_key: SecretStr | None = None
    api_username: str = Field(
        default="system", description="The user Escalator posts replies as; its posts are ignored."
    )


def discourse_signature(secret: str, body: bytes) -> str:
    """The `X-Discourse-Event-Signature` Discourse sends for `body`."""
    return "sha256=" + hmac_sha256_hex(secret, body)


def normalise(event: str, payload: dict[str, Any], own_username: str | None = None) -> Outcome:
    """A Discourse event as an Outcome: created posts become messages, the rest is ignored.

    `accepted_solution` (the Solved plugin's "Solved Event" webhook, the post under the signed
    `solved` key) becomes a message tagged `metadata.accepted_answer`: the topic has its answer.
    The unsigned `event` must agree with the signed payload (`signed_kind`), or a 401 Rejection.
    """
    kind, post = signed_kind(payload)
    if kind == "solved":
        if event not in _SOLVED_EVENTS:
            raise _mismatch(event, kind)
        if event != "accepted_solution":
            return Outcome(ignored=f"event {event!r}")
        if post.get("accepted_answer") is False:
            detail = "accepted_solution for a post the signed payload says is not accepted"
            raise Rejection(401, "unsigned_event", detail)
        return Outcome(messages=[_accepted(post)])
    if event in _SOLVED_EVENTS or (event == "post_created" and kind != "post"):
        raise _mismatch(event, kind)
    if event != "post_created":
        return Outcome(ignored=f"event {event or '(none)'!r}")
    if post.get("post_type", _REGULAR_POST) != _REGULAR_POST or post.get("user_id", 0) < 0:
        return Outcome(ignored="system or whisper post")  # user_id < 0: the system user
    if own_username and str(post.get("username", "")).lower() == own_username.lower():
        return Outcome(ignored="our own reply")
    topic_id = post["topic_id"]
    text = post.get("raw") or html_to_text(str(post.get("cooked") or ""))
    staff = bool(post.get("staff") or post.get("admin") or post.get("moderator"))
    reply_to = post.get("reply_to_post_number")
    message = InboundMessage(
        channel="community",
        external_id=str(post["id"]),
        sender=str(post["username"]),
        text=str(text),
        sent_at=datetime.fromisoformat(str(post["created_at"]).replace("Z", "+00:00")),
        subject=post.get("topic_title"),
        thread_ref=str(topic_id),
        in_reply_to=f"{topic_id}#{reply_to}" if reply_to else None,
        customer=CustomerAttributes(name=post.get("name") or None),
        metadata={
            "kind": "topic" if post.get("post_number") == 1 else "post",
            "post_number": post.get("post_number"),
            "topic_slug": post.get("topic_slug"),
            "category_id": post.get("category_id"),
            "staff": staff,
            "user_id": post.get("user_id"),
        },
    )
    return Outcome(messages=[message])


def signed_kind(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The event type the signed body carries (its one top-level key) and the post under it."""
    for kind in ("solved", "post"):
        if kind in payload:
            post = payload[kind]
            if not isinstance(post, dict):
                raise Rejection(400, "malformed", f"{kind} is not an object")
            return kind, post
    return ",".join(sorted(payload)) or "(empty)", {}


def _mismatch(event: str, kind: str) -> Rejection:
    return Rejection(
        401,
        "unsigned_event",
        f"X-Discourse-Event {event!r} does not match the signed payload ({kind!r})",
    )


def _accepted(post: dict[str, Any]) -> InboundMessage:
    """The accepted answer of a topic, as an answer event (received now, not when written)."""
    topic_id = post["topic_id"]
    return InboundMessage(
        channel="community",
        external_id=f"accepted:{post['id']}",
        sender=str(post["username"]),
        text=str(post.get("raw") or html_to_text(str(post.get("cooked") or ""))),
        sent_at=datetime.now(UTC),
        subject=post.get("topic_title"),
        thread_ref=str(topic_id),
        metadata={
            "kind": "accepted_answer",
            "accepted_answer": True,
            "post_number": post.get("post_number"),
            "user_id": post.get("user_id"),
        },
    )


def router(
    secret: str, sink: MessageSink, max_body_bytes: int, own_username: str | None = None
) -> APIRouter:
    """The Discourse webhook route."""
    api = APIRouter()

    async def verify_and_normalise(request: Request, body: bytes) -> Outcome:
        signature = request.headers.get("x-discourse-event-signature")
        require_signature(
            signature, discourse_signature(secret, body), "X-Discourse-Event-Signature"
        )
        event = request.headers.get("x-discourse-event", "")
        outcome = normalise(event, json_object(body), own_username)
        return replace(outcome, delivery_id=signature)

    @api.post(PATH)
    async def discourse_webhook(request: Request) -> Response:
        """Receive a Discourse webhook event."""
        return await handle(request, "discourse", sink, max_body_bytes, verify_and_normalise)

    return api


class DiscourseSender(HttpSender[DiscourseSettings]):
    """Posts replies into the customer's topic."""

    def send(self, reply: Reply) -> None:
        """Post the reply in its topic, or raise DeliveryError."""
        settings = self.settings
        if not (settings.url and settings.api_key):
            raise DeliveryError("not_configured", "set ESCALATOR_DISCOURSE_URL and _API_KEY", True)
        topic = (reply.thread_ref or "").strip()
        if not topic.isdigit():
            raise DeliveryError("no_recipient", f"no forum topic on the case ({topic!r})", True)
        post(
            self.client,
            f"{settings.url.rstrip('/')}/posts.json",
            json={"topic_id": int(topic), "raw": reply.text},
            headers={
                "Api-Key": settings.api_key.get_secret_value(),
                "Api-Username": settings.api_username,
            },
        )


def inbound(settings: DiscourseSettings, context: Inbound) -> APIRouter | None:
    """The webhook route, when its secret is set."""
    secret = settings.secret
    if secret is None:
        return None
    return router(
        secret.get_secret_value(), context.sink, context.max_body_bytes, settings.api_username
    )


PLUGIN = ChannelPlugin(
    name="discourse",
    channels=("community",),
    settings=DiscourseSettings,
    inbound=inbound,
    outbound=DiscourseSender,
)
"""Discourse as a channel plugin."""
