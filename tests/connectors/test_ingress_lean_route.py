"""`POST /v1/messages` served ahead of FastAPI's routing answers exactly as the FastAPI route.

Every documented answer (401, 403, 413, 400, 422, 202, 503 and the 405 of other methods) is
compared, status, body and headers, between the ingress as deployed (`lean_route`) and the
same app with the request going through FastAPI.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import ingress_keys
from connectors.http_ingress import create_app
from connectors.ingress_auth import IngressAuth
from connectors.publisher import KafkaPublisher
from schemas import Topics
from tests.kafka_support import create_topics

VALID = {
    "channel": "chat",
    "external_id": "lean-1",
    "sender": "visitor-1",
    "text": "Is anyone there?",
    "sent_at": "2026-11-20T09:30:00Z",
}
COMPARED_HEADERS = ("content-type", "content-length", "retry-after", "www-authenticate")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[IngressAuth, str]:
    keys_file = tmp_path / "keys.json"
    held = ingress_keys.KeysFile()
    token = ingress_keys.add(held, "web", ["chat"])
    ingress_keys.save(keys_file, held)
    return IngressAuth.from_keys_file(keys_file), token


async def chunked(parts: list[bytes]) -> AsyncIterator[bytes]:
    """A body sent in chunks, without a Content-Length."""
    for part in parts:
        yield part


def requests(token: str) -> Iterator[tuple[str, str, dict[str, str], Any]]:
    """(name, method, headers, body) of every kind of request the ingress answers."""
    key = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    yield "no key", "POST", {}, json.dumps(VALID)
    yield "wrong scheme", "POST", {"Authorization": f"Basic {token}"}, json.dumps(VALID)
    yield "unknown key", "POST", {"Authorization": "Bearer eik_nope"}, json.dumps(VALID)
    yield "declared too large", "POST", {**key, "Content-Length": "999999"}, "x" * 999_999
    yield "sent too large", "POST", key, chunked([b"[" + b" " * 3000, b" " * 3000 + b"]"])
    yield "not json", "POST", key, "{not json"
    yield "empty batch", "POST", key, "[]"
    yield "batch too large", "POST", key, json.dumps([VALID] * 101)
    yield "invalid", "POST", key, json.dumps({**VALID, "sent_at": "yesterday"})
    yield "channel not allowed", "POST", key, json.dumps({**VALID, "channel": "sms"})
    yield "untrusted", "POST", key, json.dumps({**VALID, "customer": {"id": "c-1"}})
    yield "accepted", "POST", key, json.dumps([VALID, {**VALID, "external_id": "lean-2"}])
    yield "other method", "GET", key, None
    yield "other method", "PUT", key, json.dumps(VALID)


async def answers(
    publisher: KafkaPublisher, topics: Topics, auth: IngressAuth, token: str, lean: bool
) -> AsyncIterator[tuple[str, int, dict[str, str], Any]]:
    app = create_app(publisher, topics, max_body_bytes=4096, auth=auth, lean_route=lean)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as http:
        for name, method, headers, body in requests(token):
            answer = await http.request(method, "/v1/messages", headers=headers, content=body)
            kept = {h: answer.headers[h] for h in COMPARED_HEADERS if h in answer.headers}
            yield name, answer.status_code, kept, answer.json()


async def test_every_answer_is_the_fastapi_routes_answer(
    kafka_bootstrap: str, topics: Topics, keys: tuple[IngressAuth, str]
) -> None:
    create_topics(kafka_bootstrap, [topics.inbound])
    auth, token = keys
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    try:
        lean = [a async for a in answers(publisher, topics, auth, token, lean=True)]
        routed = [a async for a in answers(publisher, topics, auth, token, lean=False)]
    finally:
        publisher.close()
    assert lean == routed
    statuses = {name: status for name, status, _, _ in lean}
    assert statuses == {
        "no key": 401,
        "wrong scheme": 401,
        "unknown key": 401,
        "declared too large": 413,
        "sent too large": 413,
        "not json": 400,
        "empty batch": 400,
        "batch too large": 413,
        "invalid": 422,
        "channel not allowed": 403,
        "untrusted": 422,
        "accepted": 202,
        "other method": 405,
    }


async def test_kafka_unavailable_is_the_same_503(
    topics: Topics, keys: tuple[IngressAuth, str]
) -> None:
    auth, token = keys
    publisher = KafkaPublisher({"bootstrap.servers": "localhost:1"}, delivery_timeout_seconds=1)
    body = json.dumps(VALID)
    headers = {"Authorization": f"Bearer {token}"}
    seen = []
    try:
        for lean in (True, False):
            app = create_app(publisher, topics, auth=auth, lean_route=lean)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://i") as http:
                answer = await http.post("/v1/messages", content=body, headers=headers)
            seen.append((answer.status_code, answer.headers["retry-after"], answer.json()))
    finally:
        publisher.close(timeout_seconds=1)
    assert seen[0] == seen[1]
    assert seen[0][0] == 503 and seen[0][2]["error"] == "kafka_unavailable"
