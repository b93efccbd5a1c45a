"""`/healthz`, `/readyz` and `/metrics` of the processes that have no web server of their own.

Real `escalator connect smtp|imap|replies` processes on the real broker: ready while Kafka
answers (and, for replies, while it holds partitions), alive but not ready without Kafka,
and their `/metrics` passes `promtool check metrics`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from escalator.demo import processes
from schemas import Topics
from tests.kafka_support import create_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[processes.ManagedProcess]]:
    """Processes a test starts, stopped afterwards."""
    running: list[processes.ManagedProcess] = []
    yield running
    for process in running:
        process.stop()


def start(
    running: list[processes.ManagedProcess], tmp_path: Path, args: list[str], env: dict[str, str]
) -> str:
    """Start `escalator connect KIND ...` with its metrics on a free port; its base URL.

    smtp and imap take `--metrics-port`; replies reads `ESCALATOR_REPLIES_METRICS_PORT`.
    """
    port = processes.free_port()
    kind = args[1]
    option = [] if kind == "replies" else ["--metrics-port", str(port)]
    process = processes.start(
        kind,
        [*args, *option],
        {"ESCALATOR_LOG_LEVEL": "INFO", "ESCALATOR_REPLIES_METRICS_PORT": str(port), **env},
        tmp_path / "logs",
    )
    running.append(process)
    base = f"http://127.0.0.1:{port}"
    processes.wait_until_ready(f"{base}/healthz", process, timeout_seconds=60)
    return base


def promtool_check(exposition: str) -> None:
    """`promtool check metrics` accepts the page without a complaint."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: apt-get install prometheus", pytrace=False)
    result = subprocess.run(
        [binary, "check", "metrics"], input=exposition, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def wait_ready(base: str) -> httpx.Response:
    """`/readyz` once it answers 200 (failing the test after 60 s)."""
    deadline = time.monotonic() + 60
    while (answer := httpx.get(f"{base}/readyz", timeout=5)).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.3)
    return answer


def test_smtp_connector_health(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, started: list[processes.ManagedProcess]
) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topic_prefix,
        "ESCALATOR_SMTP_DOMAINS": "help.example.com",
    }
    base = start(started, tmp_path, ["connect", "smtp", "--port", str(processes.free_port())], env)
    assert wait_ready(base).json() == {"status": "ready", "checks": {"kafka": True}}
    page = httpx.get(f"{base}/metrics", timeout=5).text
    assert "# TYPE escalator_channel_requests_total counter" in page
    assert "# TYPE escalator_connector_errors_total counter" in page
    promtool_check(page)


def test_a_connector_without_kafka_is_alive_but_not_ready(
    tmp_path: Path, started: list[processes.ManagedProcess]
) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "ESCALATOR_SMTP_DOMAINS": "help.example.com"}
    base = start(started, tmp_path, ["connect", "smtp", "--port", str(processes.free_port())], env)
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    answer = httpx.get(f"{base}/readyz", timeout=5)
    assert answer.status_code == 503
    assert answer.json() == {"status": "not_ready", "checks": {"kafka": False}}


def test_imap_connector_counts_failed_polls(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, started: list[processes.ManagedProcess]
) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topic_prefix,
        "ESCALATOR_IMAP_HOST": "127.0.0.1",
        "ESCALATOR_IMAP_PORT": str(processes.free_port()),  # nothing listens there
        "ESCALATOR_IMAP_SSL": "false",
        "ESCALATOR_IMAP_USERNAME": "support",
        "ESCALATOR_IMAP_PASSWORD": "secret",
        "ESCALATOR_IMAP_POLL_SECONDS": "0.3",
    }
    base = start(started, tmp_path, ["connect", "imap"], env)
    wait_ready(base)  # the mailbox being unreachable does not make Kafka unreachable
    deadline = time.monotonic() + 30
    sample = 'escalator_connector_errors_total{connector="imap",reason="poll_failed"}'
    while sample not in (page := httpx.get(f"{base}/metrics", timeout=5).text):
        assert time.monotonic() < deadline, "no failed poll was counted"
        time.sleep(0.3)
    promtool_check(page)


def test_reply_delivery_ready_once_it_holds_partitions(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, started: list[processes.ManagedProcess]
) -> None:
    create_topics(kafka_bootstrap, [Topics(topic_prefix).case_events])
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "ESCALATOR_TOPIC_PREFIX": topic_prefix}
    base = start(started, tmp_path, ["connect", "replies"], env)
    answer = wait_ready(base)
    assert answer.json() == {"status": "ready", "checks": {"partitions_assigned": True}}
    page = httpx.get(f"{base}/metrics", timeout=5).text
    assert "# TYPE escalator_replies_sent_total counter" in page
    assert "# TYPE escalator_consumer_lag_records gauge" in page
    promtool_check(page)


def test_desk_health_readiness_and_metrics(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, started: list[processes.ManagedProcess]
) -> None:
    port = processes.free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topic_prefix,
        "ESCALATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'desk.db'}",
        "ESCALATOR_LOG_LEVEL": "INFO",
    }
    desk = processes.start("desk", ["desk", "--port", str(port)], env, tmp_path / "logs")
    started.append(desk)
    base = f"http://127.0.0.1:{port}"
    processes.wait_until_ready(f"{base}/healthz", desk, timeout_seconds=60)
    assert wait_ready(base).json() == {
        "status": "ready",
        "checks": {"database": True, "kafka": True},
    }
    promtool_check(httpx.get(f"{base}/metrics", timeout=5).text)
