"""The HTTP ingress: validation answers, size limits, and 202 only after Kafka's acknowledgement."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.http_ingress import create_app, to_record
from connectors.ingress_auth import IngressAuth
from connectors.publisher import KafkaPublisher
from schemas import InboundMessage, Topics
from schemas.limits import MAX_MESSAGE_RECORD_BYTES, PRODUCER_MAX_RECORD_BYTES
from tests.conftest import KAFKA_SH
from tests.kafka_support import consume_until, create_topics

VALID = {
    "channel": "sms",
    "external_id": "SM123",
    "sender": "+4915112345678",
    "text": "My parcel never arrived",
    "sent_at": "2026-11-20T09:30:00+01:00",
}

OPEN = IngressAuth.without_keys()
"""These tests are about validation and Kafka; tests/security covers the API keys."""


@pytest.fixture
async def client(kafka_bootstrap: str, topics: Topics) -> AsyncIterator[httpx.AsyncClient]:
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    app = create_app(publisher, topics, max_body_bytes=4096, auth=OPEN)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as http:
        yield http
    publisher.close()


async def test_valid_message_is_written_keyed_by_sender(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    answer = await client.post("/v1/messages", json=VALID)
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 1, "messages": [{"message_key": "sms:SM123"}]}
    [record] = consume_until(kafka_bootstrap, topics.inbound, 1)
    assert record.key == b"+4915112345678"
    assert InboundMessage.model_validate_json(record.value or b"").external_id == "SM123"


async def test_batch_is_accepted_whole(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    batch = [{**VALID, "external_id": f"SM{i}"} for i in range(5)]
    answer = await client.post("/v1/messages", json=batch)
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 5
    assert len(consume_until(kafka_bootstrap, topics.inbound, 5)) == 5


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({**VALID, "sent_at": "yesterday"}, "sent_at", "datetime"),
        ({**VALID, "sent_at": "2026-11-20T09:30:00"}, "sent_at", "timezone"),
        ({k: v for k, v in VALID.items() if k != "sender"}, "sender", "Field required"),
        ({**VALID, "channel": "Carrier Pigeon"}, "channel", "pattern"),
        ({**VALID, "priority": "urgent"}, "priority", "Extra inputs are not permitted"),
        ({**VALID, "external_id": "  "}, "external_id", "at least 1 character"),
    ],
)
async def test_invalid_message_gets_422_naming_field_and_problem(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, problem: str
) -> None:
    answer = await client.post("/v1/messages", json=body)
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["index"] == 0
    assert error["field"] == field
    assert problem.lower() in error["problem"].lower()


async def test_one_bad_message_refuses_the_batch_and_names_its_index(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    batch = [VALID, {**VALID, "external_id": "SM2", "text": 5}]
    answer = await client.post("/v1/messages", json=batch)
    assert answer.status_code == 422
    assert [(e["index"], e["field"]) for e in answer.json()["detail"]] == [(1, "text")]
    records = consume_until(kafka_bootstrap, topics.inbound, 1, timeout=3, raise_on_timeout=False)
    assert records == []


async def test_non_json_and_oversize_bodies(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/messages", content=b"{nope", headers={"content-type": "x"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_json"
    huge = {**VALID, "text": "x" * 5000}
    answer = await client.post("/v1/messages", json=huge)
    assert answer.status_code == 413
    answer = await client.post("/v1/messages", json=[])
    assert answer.status_code == 400


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A broker of this test's own, on other ports, that the test may stop and restart."""
    env = {
        **os.environ,
        "KAFKA_PORT": "19092",
        "KAFKA_CONTROLLER_PORT": "19093",
        "KAFKA_DATA_DIR": str(tmp_path / "kafka"),
    }
    subprocess.run(["bash", str(KAFKA_SH), "start"], env=env, check=True, timeout=300)
    try:
        yield env
    finally:
        subprocess.run(["bash", str(KAFKA_SH), "stop"], env=env, check=False, timeout=120)


async def test_broker_down_gives_503_and_nothing_accepted_is_lost(
    private_kafka: dict[str, str], topics: Topics
) -> None:
    bootstrap = "localhost:19092"
    create_topics(bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": bootstrap}, delivery_timeout_seconds=3.0)
    app = create_app(publisher, topics, auth=OPEN)
    accepted: list[str] = []

    async def post(external_id: str) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ingress"
        ) as http:
            answer = await http.post("/v1/messages", json={**VALID, "external_id": external_id})
        if answer.status_code == 202:
            accepted.append(external_id)
        return answer

    assert (await post("before-1")).status_code == 202
    subprocess.run(["bash", str(KAFKA_SH), "stop"], env=private_kafka, check=True, timeout=120)
    down = await post("during-1")
    assert down.status_code == 503
    assert down.headers["retry-after"].isdigit()
    assert down.json()["error"] == "kafka_unavailable"
    subprocess.run(["bash", str(KAFKA_SH), "start"], env=private_kafka, check=True, timeout=300)
    for attempt in range(30):
        if (await post(f"after-{attempt}")).status_code == 202:
            break
        await asyncio.sleep(1)
    publisher.close()
    assert accepted[0] == "before-1"
    assert accepted[-1].startswith("after-")
    records = consume_until(bootstrap, topics.inbound, len(accepted), timeout=60)
    written = {InboundMessage.model_validate_json(r.value or b"").external_id for r in records}
    assert set(accepted) <= written


# --- Bounds: what the ingress accepts can always be published --------------------------------


@pytest.fixture
async def full_size_client(
    kafka_bootstrap: str, topics: Topics
) -> AsyncIterator[httpx.AsyncClient]:
    """The ingress with its default body limit (1 MiB), on the real broker."""
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    transport = httpx.ASGITransport(app=create_app(publisher, topics, auth=OPEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as http:
        yield http
    publisher.close()


def nested_metadata(depth: int) -> dict[str, Any]:
    value: Any = "x"
    for _ in range(depth - 1):
        value = {"a": value}
    return {"a": value}


async def test_metadata_nested_199_levels_is_refused_not_accepted(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/v1/messages", json={**VALID, "metadata": nested_metadata(199)})
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["field"] == "metadata"
    assert "nested more than 32 levels deep" in error["problem"]


@pytest.mark.parametrize("depth", [250, 1_000, 100_000])
async def test_deeply_nested_json_gets_400_with_a_reason_never_500(
    full_size_client: httpx.AsyncClient, depth: int
) -> None:
    bodies = (
        b"[" * depth + b"]" * depth,
        b'{"a":' * depth + b"1" + b"}" * depth,
        json.dumps(VALID)[:-1].encode()
        + b', "metadata":'
        + b'{"a":' * depth
        + b"1"
        + b"}" * (depth + 1),
    )
    for body in bodies:
        answer = await full_size_client.post("/v1/messages", content=body)
        assert answer.status_code == 400
        assert answer.json()["error"] == "too_deep"
        assert "nested more than 200 levels" in answer.json()["detail"]


async def test_nesting_within_the_parsers_limit_reaches_validation(
    full_size_client: httpx.AsyncClient,
) -> None:
    """A message at 200 levels (the message, then 199 of metadata) is parsed, then refused."""
    message = {**VALID, "metadata": nested_metadata(199)}
    answer = await full_size_client.post("/v1/messages", json=message)
    assert (answer.status_code, answer.json()["detail"][0]["field"]) == (422, "metadata")
    answer = await full_size_client.post("/v1/messages", json=[message])  # 201 levels
    assert (answer.status_code, answer.json()["error"]) == (400, "too_deep")


def message_of_record_size(size: int) -> dict[str, Any]:
    """A valid message (every field within its bound) whose record takes exactly `size` bytes.

    Non-ASCII text and long attachment URLs make it big without breaking any field's bound.
    """
    message: dict[str, Any] = {**VALID, "text": "😀" * 100_000, "metadata": {"pad": ""}}
    message["attachments"] = []

    def record_size() -> int:
        return to_record(InboundMessage.model_validate(message), "t").size

    while size - record_size() > 20_000:
        message["attachments"].append({"filename": "f", "url": "u" * 8_000})
    message["metadata"]["pad"] = "p" * (size - record_size())
    assert record_size() == size
    return message


@pytest.mark.parametrize("size", [1_000_000, MAX_MESSAGE_RECORD_BYTES + 1])
async def test_a_message_too_large_to_publish_gets_413_with_its_reason(
    full_size_client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics, size: int
) -> None:
    """Under the 1 MiB body limit, but over what one record may carry: 413, never 503."""
    body = json.dumps(message_of_record_size(size), ensure_ascii=False).encode()
    assert len(body) < 1_048_576
    answer = await full_size_client.post("/v1/messages", content=body)
    assert answer.status_code == 413
    refusal = answer.json()
    assert refusal["error"] == "record_too_large"
    [detail] = refusal["detail"]
    assert detail == {"index": 0, "bytes": size, "limit": MAX_MESSAGE_RECORD_BYTES}
    records = consume_until(kafka_bootstrap, topics.inbound, 1, timeout=3, raise_on_timeout=False)
    assert records == []


async def test_a_message_at_the_record_limit_is_published(
    full_size_client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    message = message_of_record_size(MAX_MESSAGE_RECORD_BYTES)
    answer = await full_size_client.post("/v1/messages", json=message)
    assert answer.status_code == 202
    [written] = consume_until(kafka_bootstrap, topics.inbound, 1)
    assert len(written.value or b"") + len(written.key or b"") == MAX_MESSAGE_RECORD_BYTES


async def test_a_body_of_many_messages_is_split_into_records_each_under_the_limit(
    full_size_client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    batch = [{**VALID, "external_id": f"big-{i}", "text": "w" * 95_000} for i in range(11)]
    body = json.dumps(batch).encode()
    assert PRODUCER_MAX_RECORD_BYTES < len(body) <= 1_048_576
    answer = await full_size_client.post("/v1/messages", content=body)
    assert answer.status_code == 202
    records = consume_until(kafka_bootstrap, topics.inbound, 11)
    assert all(len(r.value or b"") < MAX_MESSAGE_RECORD_BYTES for r in records)
    assert {InboundMessage.model_validate_json(r.value or b"").external_id for r in records} == {
        f"big-{i}" for i in range(11)
    }
