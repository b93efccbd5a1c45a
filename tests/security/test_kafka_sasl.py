"""Kafka security settings reach every client: a real broker that only speaks SASL.

The broker (tests/security/conftest.py) refuses unauthenticated clients and wrong passwords.
The worker (faust/aiokafka and its confluent-kafka clients), the HTTP ingress, the case store
projection, reply delivery, the desk and the `escalator cases act` CLI all run against it with
SCRAM, end to end; the ingress also with PLAIN.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from escalator.demo import processes
from schemas import Topics
from tests.deploy.conftest import case_of, message
from tests.security.conftest import SaslBroker
from tests.stack_support import escalator_stack

pytestmark = pytest.mark.kafka


def metadata_errors(config: dict[str, str]) -> tuple[bool, list[KafkaError]]:
    """Whether a metadata request succeeds with `config`, and the client errors it reported."""
    errors: list[KafkaError] = []
    admin = AdminClient({**config, "error_cb": errors.append})
    try:
        admin.list_topics(timeout=5)
    except KafkaException:
        admin.poll(1.0)  # serves the error callbacks
        return False, errors
    return True, errors


def test_only_authenticated_clients_get_in(sasl_broker: SaslBroker) -> None:
    ok, _ = metadata_errors({"bootstrap.servers": sasl_broker.bootstrap})
    assert not ok, "an unauthenticated client was let in"
    ok, errors = metadata_errors({**sasl_broker.client_config(), "sasl.password": "wrong"})
    assert not ok, "a wrong password was let in"
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    for mechanism in ("SCRAM-SHA-512", "PLAIN"):
        ok, errors = metadata_errors(sasl_broker.client_config(mechanism))
        assert ok, f"{mechanism}: {errors}"


def outbound_replies(database: Path, case_id: str) -> int:
    """Agent replies the case store holds for a case."""
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT count(*) FROM messages WHERE case_id = ? AND direction = 'outbound'",
            (case_id,),
        ).fetchone()
    return int(row[0])


def test_the_pipeline_runs_end_to_end_over_scram(sasl_broker: SaslBroker, tmp_path: Path) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}."
    env = sasl_broker.escalator_env()
    with escalator_stack(sasl_broker.bootstrap, prefix, tmp_path, **env) as stack:
        stack.start_worker()  # waits until its partitions are assigned
        stack.start_ingress()
        stack.start_projection()
        port = processes.free_port()
        replies = processes.start(
            "replies",
            ["connect", "replies"],
            {**stack.env, "ESCALATOR_REPLIES_METRICS_PORT": str(port)},
            tmp_path / "logs",
        )
        stack.started.append(replies)
        body = message("sasl-1", "My parcel never arrived")
        answer = httpx.post(f"{stack.ingress_url}/v1/messages", json=body, timeout=30)
        assert answer.status_code == 202, answer.text
        database = tmp_path / "escalator.db"
        case_id = case_of(database, "sasl-1", timeout_seconds=120)
        # the CLI publishes an agent reply with the same settings
        act = subprocess.run(
            [sys.executable, "-m", "escalator", "cases", "act", case_id, "reply", "--text", "Hi"],
            env={**os.environ, **stack.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert act.returncode == 0, act.stdout + act.stderr
        deadline = time.monotonic() + 60
        while outbound_replies(database, case_id) == 0:
            assert time.monotonic() < deadline, "the reply never reached the case store"
            time.sleep(0.3)
        processes.wait_until_ready(f"http://127.0.0.1:{port}/readyz", replies, 60)
        desk_port = processes.free_port()
        desk = processes.start(
            "desk", ["desk", "--port", str(desk_port)], stack.env, tmp_path / "logs"
        )
        stack.started.append(desk)
        # ready = the case store answers and Kafka answers the desk's authenticated client
        processes.wait_until_ready(f"http://127.0.0.1:{desk_port}/readyz", desk, 60)
        lag = httpx.get(f"{stack.worker_url}/metrics", timeout=5).text
        assert f'escalator_consumer_lag_records{{group="{prefix}worker"' in lag


def test_the_ingress_publishes_with_plain(sasl_broker: SaslBroker, tmp_path: Path) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}."
    env = sasl_broker.escalator_env("PLAIN")
    with escalator_stack(sasl_broker.bootstrap, prefix, tmp_path, **env) as stack:
        stack.start_ingress()
        ready = httpx.get(f"{stack.ingress_url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        answer = httpx.post(f"{stack.ingress_url}/v1/messages", json=message("plain-1"), timeout=30)
        assert answer.status_code == 202, answer.text
    consumer = Consumer(
        {
            **sasl_broker.client_config(),
            "group.id": f"{prefix}check",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([Topics(prefix).inbound])
        deadline = time.monotonic() + 30
        received = None
        while received is None and time.monotonic() < deadline:
            record = consumer.poll(0.5)
            if record is not None and record.error() is None:
                received = record.value()
        assert received is not None and b"plain-1" in received
    finally:
        consumer.close()
