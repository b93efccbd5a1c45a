"""A real worker whose broker goes away reports its stalled stages, and recovers; an idle
worker whose input ends with a transaction marker is not stalled.

On a broker of the test's own: the worker is busy with a burst when the broker stops (it is
held with SIGSTOP while the broker shuts down, so a fast worker cannot finish the burst in
the seconds a clean broker shutdown takes). Its batches cannot be written (retried without
end) and records wait past the offsets its stages finished: /readyz answers 503 naming the
stalled stages. Once the broker is back the stages finish the burst and /readyz answers 200
again.

A partition written in a Kafka transaction ends with the commit marker, an offset that the
worker's (read-committed) consumer never delivers: the worker stays ready past the stall
threshold once it has processed every record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from schemas import Topics
from tests.conftest import KAFKA_SH
from tests.kafka_support import (
    consume_until,
    high_watermarks,
    produce,
    produce_in_a_transaction,
)
from tests.stack_support import escalator_stack
from tests.streams.test_pipeline_kafka import message

pytestmark = pytest.mark.kafka

PORT = 19592
MESSAGES = 20_000  # 20 of the worker's 1,000-record batches: a burst that lasts seconds


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A broker of this test's own, on ports of its own, that the test stops and restarts."""
    env = {
        **os.environ,
        "KAFKA_PORT": str(PORT),
        "KAFKA_CONTROLLER_PORT": str(PORT + 1),
        "KAFKA_DATA_DIR": str(tmp_path / "kafka"),
    }
    subprocess.run(["bash", str(KAFKA_SH), "start"], env=env, check=True, timeout=300)
    try:
        yield env
    finally:
        subprocess.run(["bash", str(KAFKA_SH), "stop"], env=env, check=False, timeout=120)


def wait_for_readiness(url: str, status: int, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{url}/readyz", timeout=10)
        if answer.status_code == status:
            return answer
        assert time.monotonic() < deadline, f"/readyz stayed {answer.status_code}: {answer.text}"
        time.sleep(0.3)


def test_stages_that_cannot_go_on_fail_readyz_until_the_broker_is_back(
    own_broker: dict[str, str], topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = f"localhost:{PORT}"
    topics = Topics(topic_prefix)
    with escalator_stack(bootstrap, topic_prefix, tmp_path, ESCALATOR_STALL_SECONDS="3") as stack:
        worker = stack.start_worker()
        produce(
            bootstrap,
            topics.inbound,
            [
                (f"c{n % 100}@x.io", json.dumps(message(f"b-{n}", sender=f"c{n % 100}@x.io")))
                for n in range(MESSAGES)
            ],
        )
        deadline = time.monotonic() + 120
        while (
            routed := stack.worker_metrics().get("escalator_ingest_to_routed_seconds_count", 0)
        ) < 20:
            assert time.monotonic() < deadline, "the worker routed nothing"
            time.sleep(0.02)
        os.killpg(worker.process.pid, signal.SIGSTOP)  # mid-burst, until the broker is gone
        try:
            assert routed < MESSAGES / 2, f"the burst was nearly done before the stop: {routed}"
            subprocess.run(["bash", str(KAFKA_SH), "stop"], env=own_broker, check=True, timeout=120)
        finally:
            os.killpg(worker.process.pid, signal.SIGCONT)
        stalled = wait_for_readiness(stack.worker_url, 503, timeout=60).json()
        assert stalled["status"] == "stalled", stalled
        assert "made no progress" in stalled["reason"], stalled
        subprocess.run(["bash", str(KAFKA_SH), "start"], env=own_broker, check=True, timeout=300)
        consume_until(bootstrap, topics.queue("general"), MESSAGES, timeout=240)
        wait_for_readiness(stack.worker_url, 200, timeout=120)


def test_an_idle_worker_whose_input_ends_with_a_transaction_marker_stays_ready(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Stage C writes in transactions; before the fix its idle input read as waiting."""
    topics = Topics(topic_prefix)
    stall_seconds = 2.0
    with escalator_stack(
        kafka_bootstrap, topic_prefix, tmp_path, ESCALATOR_STALL_SECONDS=str(stall_seconds)
    ) as stack:
        stack.start_worker()
        senders = [f"c{n}@x.io" for n in range(8)]
        produce_in_a_transaction(
            kafka_bootstrap,
            [
                (topics.inbound, sender, json.dumps(message(f"tx-{n}", sender=sender)))
                for n, sender in enumerate(senders)
            ]
            # stage C's input too: a record it dead-letters (not an action), then its marker
            + [(topics.agent_actions, "case-1", "not an action")],
        )
        consume_until(kafka_bootstrap, topics.queue("general"), len(senders), timeout=120)
        consume_until(kafka_bootstrap, topics.dlq, 1, timeout=60)
        written = consume_until(
            kafka_bootstrap, [topics.inbound, topics.agent_actions], len(senders) + 1
        )
        last = {(r.topic, r.partition): r.offset for r in sorted(written, key=lambda r: r.offset)}
        # each partition written ends with the commit marker, one offset past its last record
        assert high_watermarks(kafka_bootstrap, last) == {tp: o + 2 for tp, o in last.items()}
        idle_until = time.monotonic() + 4 * stall_seconds
        while time.monotonic() < idle_until:
            answer = httpx.get(f"{stack.worker_url}/readyz", timeout=10)
            assert answer.status_code == 200, answer.text
            time.sleep(0.3)
        assert stack.worker_metrics()["escalator_stage_stalled_seconds"] == 0
