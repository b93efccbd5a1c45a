"""The HTTP ingress: validation answers, size limits, and 202 only after Kafka's acknowledgement."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.http_ingress import create_app
from connectors.ingress_auth import IngressAuth
from connectors.publisher import KafkaPublisher
from schemas import InboundMessage, Topics
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
