"""The baseline of bench/ingress.py: a bare ASGI app that reads the body and answers 202.

No Kafka, no validation, no framework: what uvicorn (uvloop, httptools) costs per request on
this machine, served with the same options and processes as the ingress.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"accepted":1,"messages":[{"message_key":"chat:bare"}]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the request body whole, answer 202 with a body the size of the ingress's."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
