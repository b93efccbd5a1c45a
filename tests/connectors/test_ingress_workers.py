"""`escalator connect http --workers 2`: several processes on one port answer as one ingress.

Whichever process a connection reaches, a key is checked the same way, a replayed webhook
delivery is refused once any process took it, and `/metrics` counts what all of them did.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from connectors import ingress_keys
from connectors.channels.webhook import webhook_signature
from escalator.demo import processes
from tests.kafka_support import consume_until

SECRET = "webhook-secret-for-the-workers-test"
ACCEPTED = 'escalator_ingress_messages_accepted_total{channel="chat"}'


def message(number: int, channel: str = "chat") -> dict[str, str]:
    return {
        "channel": channel,
        "external_id": f"{channel}-{number}",
        "sender": f"visitor-{number}",
        "text": "Is anyone there?",
        "sent_at": "2026-11-20T09:30:00Z",
    }


def worker_pids(parent: int) -> set[int]:
    """The ingress's worker processes: the children its supervisor spawned (not the
    multiprocessing resource tracker)."""
    children: set[int] = set()
    for task in Path(f"/proc/{parent}/task").iterdir():
        children |= {int(pid) for pid in (task / "children").read_text().split()}
    return {pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def fresh(method: str, url: str, **options: object) -> httpx.Response:
    """One request on a new connection, so the kernel may hand it to any process."""
    with httpx.Client(timeout=30) as http:
        return http.request(method, url, **options)  # type: ignore[arg-type]


def accepted_total(metrics_page: str) -> float:
    for line in metrics_page.splitlines():
        if line.startswith(ACCEPTED):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("metrics_on", ["public port", "metrics port"])
def test_two_worker_processes_accept_refuse_and_count_as_one_ingress(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, metrics_on: str
) -> None:
    keys_file = tmp_path / "keys.json"
    keys = ingress_keys.KeysFile()
    token = ingress_keys.add(keys, "partner", ["chat"])
    ingress_keys.save(keys_file, keys)
    port, metrics_port = processes.free_port(), processes.free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topic_prefix,
        "ESCALATOR_INGRESS_KEYS_FILE": str(keys_file),
        "ESCALATOR_WEBHOOK_SECRET": SECRET,
        "ESCALATOR_HTTP_WORKERS": "2",
    }
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    if metrics_on == "metrics port":  # as the chart and compose run it
        env["ESCALATOR_INGRESS_METRICS_PORT"] = str(metrics_port)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    ingress = processes.start("ingress", ["connect", "http", "--port", str(port)], env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_until_ready(f"{url}/readyz", ingress)
        deadline = time.monotonic() + 60
        while len(worker_pids(ingress.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(worker_pids(ingress.process.pid)) == 2

        key = {"Authorization": f"Bearer {token}"}
        sent = 20
        for number in range(sent):
            answer = fresh("POST", f"{url}/v1/messages", json=message(number), headers=key)
            assert answer.status_code == 202, answer.text
        for _ in range(6):
            assert fresh("POST", f"{url}/v1/messages", json=message(99)).status_code == 401
            wrong = {"Authorization": "Bearer eik_not-a-key"}
            answer = fresh("POST", f"{url}/v1/messages", json=message(99), headers=wrong)
            assert answer.status_code == 401
            answer = fresh("POST", f"{url}/v1/messages", json=message(99, "sms"), headers=key)
            assert answer.status_code == 403

        body = json.dumps(message(500)).encode()
        stamp = str(int(time.time()))
        signed = {
            "Content-Type": "application/json",
            "X-Escalator-Timestamp": stamp,
            "X-Escalator-Signature": webhook_signature(SECRET, stamp, body),
        }
        deliveries = [
            fresh("POST", f"{url}/v1/channels/webhook", content=body, headers=signed).json()
            for _ in range(10)
        ]
        assert [d["accepted"] for d in deliveries].count(1) == 1, deliveries
        assert all(d.get("ignored") == "replayed delivery" for d in deliveries if not d["accepted"])

        # whichever process answers, it reports the sums of both
        for _ in range(6):
            assert accepted_total(fresh("GET", metrics_url).text) == sent + 1
    finally:
        ingress.stop()
    records = consume_until(kafka_bootstrap, f"{topic_prefix}messages.inbound", sent + 1)
    assert len(records) == sent + 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_half_configured_channel_stops_the_ingress_before_any_process_starts(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, workers: str
) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topic_prefix,
        "ESCALATOR_INGRESS_AUTH": "none",
        "ESCALATOR_TWILIO_AUTH_TOKEN": "token-without-its-public-url",
        "ESCALATOR_HTTP_WORKERS": workers,
    }
    port = processes.free_port()
    ingress = processes.start("ingress", ["connect", "http", "--port", str(port)], env, tmp_path)
    try:
        assert ingress.process.wait(timeout=120) != 0
    finally:
        ingress.stop()
    assert "ESCALATOR_PUBLIC_URL" in ingress.log_path.read_text()
