"""What every channel webhook shares: body limits, the answers to bad input, and publishing.

A channel module only verifies and normalises: it turns a request into an `Outcome` or
raises `Rejection`. `handle` does the rest the same way for every channel: 413 for an
oversize body, 401/400 from rejections, 400 for anything that does not parse, 503 with
`Retry-After` when Kafka does not acknowledge, and 200 otherwise. A verified delivery the
sink's `ReplayCache` has seen before is answered 200 and dropped (counted `replayed`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from connectors import metrics
from connectors.channels._metrics import CHANNEL_REQUESTS
from connectors.channels._replay import DeliveryMemory, ReplayCache
from connectors.http_ingress import (
    RETRY_AFTER_SECONDS,
    Publisher,
    oversize_records,
    problem,
    read_limited,
    to_record,
)
from connectors.json_body import BodyNotJsonError, decode_json
from connectors.publisher import PublishError
from kafkaio import RecordsRejectedError
from schemas import InboundMessage

log = logging.getLogger(__name__)


class Rejection(Exception):  # noqa: N818 - it is an answer, not an error of ours
    """A request refused with a status, a short reason and a human detail."""

    def __init__(self, status: int, reason: str, detail: Any) -> None:
        super().__init__(f"{status} {reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Outcome:
    """What a channel made of a request: messages to publish, or why there are none.

    `reply` replaces the default JSON answer (a Twilio TwiML document, a Slack challenge).
    `delivery_id` names the verified delivery for the replay window (what its signature
    covers); None leaves the request out of it.
    """

    messages: Sequence[InboundMessage] = ()
    ignored: str | None = None
    reply: Response | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    delivery_id: str | None = None


@dataclass(frozen=True)
class MessageSink:
    """Publishes normalised messages to `messages.inbound` and waits for Kafka's ack.

    `replays` remembers the webhook deliveries already taken (one per process, see `_replay`,
    or one per ingress shared by its worker processes, see `_replay_shared`).
    """

    publisher: Publisher
    topic: str
    replays: DeliveryMemory = field(default_factory=ReplayCache)

    async def publish(self, messages: Sequence[InboundMessage]) -> None:
        """Write the messages keyed by sender; raises PublishError if Kafka did not take them.

        A message whose record is over `MAX_MESSAGE_RECORD_BYTES` can never be written:
        RecordsRejectedError (a PublishError) names it, and nothing of the batch is written.
        """
        records = [to_record(message, self.topic) for message in messages]
        oversize = oversize_records(records)
        if oversize:
            raise RecordsRejectedError(
                {
                    item["index"]: f"the record takes {item['bytes']} bytes; "
                    f"at most {item['limit']} fit"
                    for item in oversize
                }
            )
        if records:
            await self.publisher.publish(records)
        for message in messages:
            metrics.ACCEPTED.labels(metrics.channel_label(message.channel)).inc()


Handler = Callable[[Request, bytes], Awaitable[Outcome]]


async def handle(
    request: Request, channel: str, sink: MessageSink, max_body_bytes: int, handler: Handler
) -> Response:
    """Run one webhook request through `handler` and answer it; never raises."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        return _refused(channel, 413, "too_large", f"the body exceeds {max_body_bytes} bytes")
    body = await read_limited(request, max_body_bytes)
    if body is None:
        return _refused(channel, 413, "too_large", f"the body exceeds {max_body_bytes} bytes")
    try:
        outcome = await handler(request, body)
    except Rejection as rejection:
        return _refused(channel, rejection.status, rejection.reason, rejection.detail)
    except ValidationError as exc:
        detail = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(message)", "problem": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        return _refused(channel, 400, "malformed", detail)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        return _refused(channel, 400, "malformed", f"{type(exc).__name__}: {exc}")
    except Exception:  # no input may take the process down; the log keeps the evidence
        log.exception("%s webhook: unexpected failure", channel)
        return _refused(channel, 400, "malformed", "the request could not be processed")
    delivery = outcome.delivery_id
    if delivery is not None and not sink.replays.claim(channel, delivery):
        CHANNEL_REQUESTS.labels(channel, "replayed").inc()
        return outcome.reply or JSONResponse(
            {"accepted": 0, "messages": [], "ignored": "replayed delivery"}
        )
    refusal = await _publish(channel, sink, outcome.messages, delivery)
    if refusal is not None:
        return refusal
    CHANNEL_REQUESTS.labels(channel, "accepted" if outcome.messages else "ignored").inc()
    if outcome.reply is not None:
        return outcome.reply
    content: dict[str, Any] = {
        "accepted": len(outcome.messages),
        "messages": [{"message_key": message.message_key} for message in outcome.messages],
    }
    if outcome.ignored:
        content["ignored"] = outcome.ignored
    if outcome.dropped:
        content["dropped"] = outcome.dropped
    return JSONResponse(status_code=200, content=content)


async def _publish(
    channel: str, sink: MessageSink, messages: Sequence[InboundMessage], delivery: str | None
) -> Response | None:
    """Publish the messages; the answer when Kafka did not take them, None when it did."""
    try:
        await sink.publish(messages)
    except PublishError as exc:
        if delivery is not None:
            sink.replays.release(channel, delivery)  # the provider's retry gets the same answer
        if isinstance(exc, RecordsRejectedError):
            rejected = [{"index": i, "problem": reason} for i, reason in exc.rejected.items()]
            return _refused(channel, 413, "record_too_large", rejected)
        CHANNEL_REQUESTS.labels(channel, "kafka_unavailable").inc()
        return problem(
            503,
            "kafka_unavailable",
            f"not accepted, retry later: {exc}",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return None


def _refused(channel: str, status: int, reason: str, detail: Any) -> Response:
    outcome = {401: "unauthorized", 403: "unauthorized", 413: "too_large"}.get(status, "malformed")
    CHANNEL_REQUESTS.labels(channel, outcome).inc()
    metrics.REJECTED.labels(f"{channel}_{reason}").inc()
    return problem(status, reason, detail)


def json_body(body: bytes) -> Any:
    """The body decoded as JSON; a 400 Rejection with the parser's reason otherwise."""
    try:
        return decode_json(body)
    except BodyNotJsonError as exc:
        raise Rejection(400, exc.reason, exc.detail) from exc


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; a 400 Rejection for anything else."""
    document = json_body(body)
    if not isinstance(document, dict):
        raise Rejection(400, "malformed", "the body must be a JSON object")
    return document


def ignored(reason: str, reply: Response | None = None) -> Outcome:
    """An acknowledged request that publishes nothing (unknown event types, our own echoes)."""
    return Outcome(ignored=reason, reply=reply)
