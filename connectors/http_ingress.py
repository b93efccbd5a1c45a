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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import ValidationError
from starlette.types import ASGIApp, Scope

from connectors import metrics
from connectors._asgi import ClientDisconnect, Receive, Send, receive_limited, send_json
from connectors.ingress_auth import IngressAuth, Refusal
from connectors.json_body import BodyNotJsonError, decode_json
from connectors.publisher import OutboundRecord, PublishError
from metricsio import render_metrics, served_registry
from schemas import InboundMessage, Topics
from schemas.limits import MAX_BATCH, MAX_MESSAGE_RECORD_BYTES

__all__ = [
    "MAX_BATCH",
    "RETRY_AFTER_SECONDS",
    "Answer",
    "LeanRoute",
    "MessagesEndpoint",
    "Publisher",
    "create_app",
    "error",
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


@dataclass(frozen=True)
class Answer:
    """An answer of the ingress: status, JSON content and extra headers."""

    status: int
    content: Any
    headers: dict[str, str] | None = None

    def response(self) -> Response:
        """The answer as a FastAPI response."""
        return JSONResponse(status_code=self.status, content=self.content, headers=self.headers)


def error(status: int, title: str, detail: Any, headers: dict[str, str] | None = None) -> Answer:
    """A JSON error answer: `{"error": title, "detail": detail}` with the status."""
    return Answer(status, {"error": title, "detail": detail}, headers)


def problem(
    status: int, title: str, detail: Any, headers: dict[str, str] | None = None
) -> Response:
    """`error` as a FastAPI response (the channel webhooks answer with it)."""
    return error(status, title, detail, headers).response()


def parse_messages(body: bytes) -> list[InboundMessage] | Answer:
    """Decode and validate a request body: a JSON object or an array of them."""
    try:
        document = decode_json(body)
    except BodyNotJsonError as exc:
        metrics.REJECTED.labels(exc.reason).inc()
        return error(400, exc.reason, exc.detail)
    items = document if isinstance(document, list) else [document]
    if not items:
        metrics.REJECTED.labels("empty_batch").inc()
        return error(400, "empty_batch", "the batch holds no message")
    if len(items) > MAX_BATCH:
        metrics.REJECTED.labels("batch_too_large").inc()
        return error(413, "batch_too_large", f"at most {MAX_BATCH} messages per request")
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
        return error(422, "invalid_message", errors)
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
    lean_route: bool = True,
) -> FastAPI:
    """Build the ingress ASGI app around an injected publisher.

    `routers` are mounted beside `/v1/messages`: the channel webhooks (`connectors.channels`),
    built by the composition root with the same publisher. `auth` decides who may publish;
    `serve_metrics=False` leaves `/metrics` to a separate, private port. `lean_route=False`
    serves `POST /v1/messages` through FastAPI's routing instead (the same answers, slower).
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        publisher.close()

    app = FastAPI(title="Escalator ingress", version="1", lifespan=lifespan)
    endpoint = MessagesEndpoint(publisher, topics, max_body_bytes, auth)
    if lean_route:
        app.add_middleware(LeanRoute, path="/v1/messages", method="POST", endpoint=endpoint)

    # The documented operation (its bearer key declared in the OpenAPI document; `auth` does
    # the checking). With `lean_route` the same endpoint answers before FastAPI's routing.
    @app.post("/v1/messages", status_code=202, dependencies=[Depends(HTTPBearer(auto_error=False))])
    async def post_messages(request: Request) -> Response:
        """Accept one inbound message or a JSON array of them."""
        answer = await endpoint.answer(
            request.headers.get("authorization"),
            request.headers.get("content-length"),
            partial(read_limited, request),
        )
        return answer.response()

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


class MessagesEndpoint:
    """`POST /v1/messages`: authenticate, bound, validate, publish, answer (see the module).

    Callable as a plain ASGI app, which is how the ingress serves it (`LeanRoute`); `answer`
    is the same logic for any framework.
    """

    def __init__(
        self, publisher: Publisher, topics: Topics, max_body_bytes: int, auth: IngressAuth
    ) -> None:
        self._publisher = publisher
        self._topic = topics.inbound
        self._max_body_bytes = max_body_bytes
        self._auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request as an ASGI app."""
        authorization = declared = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"content-length" and declared is None:
                declared = value.decode("latin-1")
        try:
            answer = await self.answer(authorization, declared, partial(receive_limited, receive))
        except ClientDisconnect:
            return  # nobody is left to answer; nothing was published
        await send_json(send, answer.status, answer.content, answer.headers)

    async def answer(
        self,
        authorization: str | None,
        declared_length: str | None,
        read_body: Callable[[int], Awaitable[bytes | None]],
    ) -> Answer:
        """The answer to a request with these headers, reading its body only once the key
        is valid and the declared length fits."""
        started = time.perf_counter()
        caller = self._auth.authenticate(authorization)
        if isinstance(caller, Refusal):
            return refused(caller)
        limit = self._max_body_bytes
        too_large = f"the body exceeds {limit} bytes"
        declared = declared_length or ""
        if declared.isdigit() and int(declared) > limit:
            metrics.REJECTED.labels("too_large").inc()
            return error(413, "too_large", too_large)
        body = await read_body(limit)
        if body is None:
            metrics.REJECTED.labels("too_large").inc()
            return error(413, "too_large", too_large)
        parsed = parse_messages(body)
        if isinstance(parsed, Answer):
            return parsed
        refusal = self._auth.check(parsed, caller)
        if refusal is not None:
            return refused(refusal)
        records = [to_record(message, self._topic) for message in parsed]
        oversize = oversize_records(records)
        if oversize:
            metrics.REJECTED.labels("record_too_large").inc(len(oversize))
            return error(413, "record_too_large", oversize)
        try:
            await self._publisher.publish(records)
        except PublishError as exc:
            metrics.REJECTED.labels("kafka_unavailable").inc(len(parsed))
            return error(
                503,
                "kafka_unavailable",
                f"not accepted, retry later: {exc}",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        for message in parsed:
            metrics.ACCEPTED.labels(metrics.channel_label(message.channel)).inc()
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        return Answer(
            202,
            {
                "accepted": len(parsed),
                "messages": [{"message_key": message.message_key} for message in parsed],
            },
        )


class LeanRoute:
    """ASGI middleware handing one method and path straight to an ASGI endpoint, ahead of
    FastAPI's routing; every other request goes on to the app."""

    def __init__(self, app: ASGIApp, path: str, method: str, endpoint: ASGIApp) -> None:
        self._app = app
        self._path = path
        self._method = method
        self._endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route the request."""
        if (
            scope["type"] == "http"
            and scope["path"] == self._path
            and scope["method"] == self._method
        ):
            await self._endpoint(scope, receive, send)
        else:
            await self._app(scope, receive, send)


def refused(refusal: Refusal) -> Answer:
    """The answer to a request the ingress's authentication refused (counted by reason)."""
    metrics.REJECTED.labels(refusal.error).inc()
    return error(refusal.status, refusal.error, refusal.detail, refusal.headers)


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
