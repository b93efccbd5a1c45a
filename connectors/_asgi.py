"""Plain ASGI for the ingress's hot request: read a bounded body, send a JSON answer.

`POST /v1/messages` skips FastAPI's dispatch (routing, dependency solving, Request and
Response objects), which cost about as much per request as the ingress's own checks. These
helpers are the little it needs instead; they answer exactly as Starlette's `JSONResponse`
does, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from starlette.requests import ClientDisconnect

__all__ = ["ClientDisconnect", "Receive", "Send", "json_bytes", "receive_limited", "send_json"]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
"""The ASGI receive callable."""

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
"""The ASGI send callable."""


def json_bytes(content: Any) -> bytes:
    """`content` as Starlette's JSONResponse renders it (compact, UTF-8, no NaN)."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def receive_limited(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes `limit` bytes; ClientDisconnect if the
    client leaves before sending it all."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(
    send: Send, status: int, content: Any, headers: Mapping[str, str] | None = None
) -> None:
    """Send a complete JSON answer."""
    body = json_bytes(content)
    raw_headers = [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", b"application/json"),
    ]
    if headers:
        raw_headers.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        )
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
