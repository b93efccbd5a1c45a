"""`POST /v1/messages`: the generic HTTP ingress for inbound messages (one or a batch).

Every message of a request is validated first; a request with any invalid message is
refused whole (422, naming each message index, field and problem), so a client never
has to work out which half of its batch landed. Valid requests are written to
`messages.inbound`, keyed by sender, and answered 202 only after Kafka acknowledged
every record. When Kafka cannot take them, the answer is 503 with `Retry-After`.

Callers authenticate with an API key (`connectors.ingress_auth`): 401 without one, 403 for a
channel the key may not publish to, 422 for a trust field it may not set.

Every message becomes one record, and a record must fit what Kafka takes
(`schemas.limits.MAX_MESSAGE_RECORD_BYTES`): a request with a message over it is refused
whole with 413, so a 503 always means "retry later" and never "this can never be published".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import ValidationError

from connectors import metrics
from connectors.ingress_auth import IngressAuth, Refusal
from connectors.json_body import BodyNotJsonError, decode_json
from connectors.publisher import OutboundRecord, PublishError
from metricsio import render_metrics, served_registry
from schemas import InboundMessage, Topics
from schemas.limits import MAX_BATCH, MAX_MESSAGE_RECORD_BYTES

__all__ = [
    "MAX_BATCH",
    "RETRY_AFTER_SECONDS",
    "Publisher",
    "create_app",
    "oversize_records",
    "parse_messages",
    "problem",
    "read_limited",
    "refused",
    "to_record",
]

RETRY_AFTER_SECONDS = 5


class Publisher(Protocol):
    """What the ingress needs from a Kafka producer (see `KafkaPublisher`)."""

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        """Write the records; return only once all are acknowledged."""

    def check_connection(self, timeout_seconds: float = 2.0) -> bool:
        """True when Kafka answers."""
        ...

    def close(self, timeout_seconds: float = 10.0) -> None:
        """Flush and stop."""


def problem(
    status: int, title: str, detail: Any, headers: dict[str, str] | None = None
) -> Response:
    """A JSON error answer: `{"error": title, "detail": detail}` with the status."""
    return JSONResponse(
        status_code=status, content={"error": title, "detail": detail}, headers=headers
    )


def parse_messages(body: bytes) -> list[InboundMessage] | Response:
    """Decode and validate a request body: a JSON object or an array of them."""
    try:
        document = decode_json(body)
    except BodyNotJsonError as exc:
        metrics.REJECTED.labels(exc.reason).inc()
        return problem(400, exc.reason, exc.detail)
    items = document if isinstance(document, list) else [document]
    if not items:
        metrics.REJECTED.labels("empty_batch").inc()
        return problem(400, "empty_batch", "the batch holds no message")
    if len(items) > MAX_BATCH:
        metrics.REJECTED.labels("batch_too_large").inc()
        return problem(413, "batch_too_large", f"at most {MAX_BATCH} messages per request")
    messages: list[InboundMessage] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            messages.append(InboundMessage.model_validate(item))
        except ValidationError as exc:
            errors.extend(
                {
                    "index": index,
                    "field": ".".join(str(part) for part in error["loc"]) or "(message)",
                    "problem": error["msg"],
                }
                for error in exc.errors(include_url=False)
            )
    if errors:
        metrics.REJECTED.labels("invalid_message").inc(len({e["index"] for e in errors}))
        return problem(422, "invalid_message", errors)
    return messages


def to_record(message: InboundMessage, topic: str) -> OutboundRecord:
    """The Kafka record for a validated message: keyed by sender, value in the contract JSON."""
    return OutboundRecord(
        topic=topic,
        key=message.sender.encode("utf-8"),
        value=message.model_dump_json(exclude_none=True).encode("utf-8"),
    )


def oversize_records(records: Sequence[OutboundRecord]) -> list[dict[str, int]]:
    """Each record too large to publish: its index, its bytes and the limit (empty if none)."""
    return [
        {"index": index, "bytes": record.size, "limit": MAX_MESSAGE_RECORD_BYTES}
        for index, record in enumerate(records)
        if record.size > MAX_MESSAGE_RECORD_BYTES
    ]


def create_app(
    publisher: Publisher,
    topics: Topics,
    max_body_bytes: int = 1_048_576,
    routers: Sequence[APIRouter] = (),
    *,
    auth: IngressAuth,
    serve_metrics: bool = True,
) -> FastAPI:
    """Build the ingress ASGI app around an injected publisher.

    `routers` are mounted beside `/v1/messages`: the channel webhooks (`connectors.channels`),
    built by the composition root with the same publisher. `auth` decides who may publish;
    `serve_metrics=False` leaves `/metrics` to a separate, private port.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        publisher.close()

    app = FastAPI(title="Escalator ingress", version="1", lifespan=lifespan)

    # declares the bearer key in the OpenAPI document; `auth` does the checking
    @app.post("/v1/messages", status_code=202, dependencies=[Depends(HTTPBearer(auto_error=False))])
    async def post_messages(request: Request) -> Response:
        """Accept one inbound message or a JSON array of them."""
        started = time.perf_counter()
        caller = auth.authenticate(request.headers.get("authorization"))
        if isinstance(caller, Refusal):
            return refused(caller)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            metrics.REJECTED.labels("too_large").inc()
            return problem(413, "too_large", f"the body exceeds {max_body_bytes} bytes")
        body = await read_limited(request, max_body_bytes)
        if body is None:
            metrics.REJECTED.labels("too_large").inc()
            return problem(413, "too_large", f"the body exceeds {max_body_bytes} bytes")
        parsed = parse_messages(body)
        if isinstance(parsed, Response):
            return parsed
        refusal = auth.check(parsed, caller)
        if refusal is not None:
            return refused(refusal)
        records = [to_record(message, topics.inbound) for message in parsed]
        oversize = oversize_records(records)
        if oversize:
            metrics.REJECTED.labels("record_too_large").inc(len(oversize))
            return problem(413, "record_too_large", oversize)
        try:
            await publisher.publish(records)
        except PublishError as exc:
            metrics.REJECTED.labels("kafka_unavailable").inc(len(parsed))
            return problem(
                503,
                "kafka_unavailable",
                f"not accepted, retry later: {exc}",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        for message in parsed:
            metrics.ACCEPTED.labels(metrics.channel_label(message.channel)).inc()
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        return JSONResponse(
            status_code=202,
            content={
                "accepted": len(parsed),
                "messages": [{"message_key": message.message_key} for message in parsed],
            },
        )

    if serve_metrics:
        registry = served_registry()

        @app.get("/metrics")
        async def prometheus_metrics(request: Request) -> Response:
            """Prometheus exposition of this ingress's metrics (OpenMetrics when asked for)."""
            body, content_type = render_metrics(request.headers.get("accept"), registry)
            return Response(body, headers={"Content-Type": content_type})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        """Readiness: Kafka answers a metadata request (asked from a thread: a slow broker
        must not stall the requests this process is serving meanwhile)."""
        if await asyncio.to_thread(publisher.check_connection, 1.0):
            return JSONResponse({"status": "ready"})
        return problem(503, "kafka_unavailable", "Kafka does not answer", {"Retry-After": "5"})

    for router in routers:
        app.include_router(router)
    return app


def refused(refusal: Refusal) -> Response:
    """The answer to a request the ingress's authentication refused (counted by reason)."""
    metrics.REJECTED.labels(refusal.error).inc()
    return problem(refusal.status, refusal.error, refusal.detail, refusal.headers)


async def read_limited(request: Request, limit: int) -> bytes | None:
    """Read the body, giving up (None) as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
