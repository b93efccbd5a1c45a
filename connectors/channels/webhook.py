"""`POST /v1/channels/webhook`: a generic signed JSON webhook (web chat, web forms, custom).

The body is one inbound message in the contract's JSON, or an array of them. The sender signs
it: `X-Escalator-Timestamp` is the unix time in seconds and `X-Escalator-Signature` is
`sha256=` + hex HMAC-SHA256(secret, `{timestamp}.{body}`). A timestamp outside the tolerance
window is a replay and refused; a replay inside it is recognised by its signature (the
replay window of `_replay`), acknowledged and dropped.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from connectors.channels._http import MessageSink, Outcome, Rejection, handle, json_body
from connectors.channels._signing import hmac_sha256_hex, require_fresh, require_signature
from connectors.http_ingress import MAX_BATCH
from schemas import InboundMessage

PATH = "/v1/channels/webhook"
SIGNATURE_HEADER = "X-Escalator-Signature"
TIMESTAMP_HEADER = "X-Escalator-Timestamp"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature a sender puts in `X-Escalator-Signature`."""
    return "sha256=" + hmac_sha256_hex(secret, timestamp.encode("ascii") + b"." + body)


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
