"""`escalator projection` as a real process: projects, serves /metrics, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from queues import CaseStore
from schemas import Topics
from tests.kafka_support import create_topics, produce
from tests.queues.case_event_builders import case_id, conversation, to_bytes

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]

# Runs the command function exactly as the CLI does, without importing every other command.
LAUNCHER = (
    "import typer; from escalator.commands.projection import run_projection; "
    "typer.run(run_projection)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_projection_process_serves_metrics_and_stops_on_sigterm(
    kafka_bootstrap: str, topics: Topics, database_url: str
) -> None:
    create_topics(kafka_bootstrap, [topics.case_events], partitions=2)
    produce(
        kafka_bootstrap,
        topics.case_events,
        [(event.case_id, to_bytes(event)) for event in conversation("cust-proc", messages=2)],
    )
    port = free_port()
    environment = {
        **os.environ,
        "ESCALATOR_DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topics.prefix,
        "ESCALATOR_PROJECTION_METRICS_PORT": str(port),
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        metrics = ""
        deadline = time.monotonic() + 60
        while 'escalator_projection_events_total{type="case.routed"} 2.0' not in metrics:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"no projected events in /metrics:\n{metrics}")
            time.sleep(0.3)
            try:
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                continue

        store = CaseStore.open(database_url)
        case = store.get_case(case_id("cust-proc"))
        store.close()
        assert case is not None
        assert case.summary.message_count == 2
        assert "escalator_projection_batch_seconds_bucket" in metrics

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
