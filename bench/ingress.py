"""Accepted messages/s through the HTTP ingress and the SMTP connector, each against its
baseline in the same run (loopback only, bounded).

- wrk, one new message per request: `escalator connect http` against a bare ASGI app that
  answers 202 without Kafka (`bench/_bare_asgi.py`), on the same server stack (uvicorn,
  uvloop, httptools) with the same number of processes. Target: at least 0.5x.
- wrk, 100 new messages per request: the ingress against a bare confluent-kafka produce loop
  of the same messages (acks=all, idempotent). Target: at least 0.3x.
- Python httpx clients (the client saturates first) and SMTP, against the produce loop.

The last line is one JSON object with every figure and both ratios. wrk comes from
`deploy/test-tools.sh` (Debian's package; `make bench` runs it).

Run: .venv/bin/python bench/ingress.py [--workers N] [--wrk-seconds S] [--connections C]
     [--http N] [--smtp N]
Needs Kafka at KAFKA_BOOTSTRAP_SERVERS (default localhost:9092); topics are created under a
fresh prefix and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors import ingress_keys
from connectors.channels import MessageSink
from connectors.email.smtp import SmtpConnector
from connectors.http_ingress import to_record
from connectors.publisher import PRODUCER_DEFAULTS, KafkaPublisher
from escalator.ingress_server import worker_count
from schemas import InboundMessage, Topics

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
TIME_LIMIT_S = 120.0
REPO = Path(__file__).resolve().parent.parent
BATCH = 100


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def message(i: int) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "channel": "chat",
            "external_id": f"bench-{i}",
            "sender": f"visitor-{i % 500}",
            "text": "My parcel never arrived and nobody answers my messages. " * 3,
            "sent_at": "2026-11-20T09:30:00Z",
        }
    )


def bare_produce(topics: Topics, count: int) -> float:
    """Baseline: one producer, same settings as KafkaPublisher, produce all, flush."""
    producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": BOOTSTRAP})
    records = [to_record(message(i), topics.inbound) for i in range(count)]
    started = time.perf_counter()
    for record in records:
        while True:
            try:
                producer.produce(record.topic, value=record.value, key=record.key)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    assert producer.flush(60) == 0
    return count / (time.perf_counter() - started)


def start_ingress(topics: Topics, workers: int = 1) -> tuple[subprocess.Popen[bytes], int, str]:
    """`escalator connect http` as its own process (as deployed, with an API key), once it
    answers; returns the process, its port and the key to send."""
    port = free_port()
    keys_file = Path(f"/tmp/escalator-bench-keys-{uuid.uuid4().hex[:8]}.json")
    keys = ingress_keys.KeysFile()
    key = ingress_keys.add(keys, "bench", ["*"])
    ingress_keys.save(keys_file, keys)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATOR_TOPIC_PREFIX": topics.prefix,
        "ESCALATOR_LOG_LEVEL": "WARNING",
        "ESCALATOR_INGRESS_KEYS_FILE": str(keys_file),
    }
    escalator = str(Path(sys.executable).parent / "escalator")
    command = [escalator, "connect", "http", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    wait_until_up(process, port, "escalator connect http")
    return process, port, key


def start_bare(workers: int) -> tuple[subprocess.Popen[bytes], int]:
    """The baseline server: `bench/_bare_asgi.py` on uvicorn with the ingress's options."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "bench._bare_asgi:app", "--port", str(port),
        "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning", "--timeout-worker-healthcheck", "60",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, start_new_session=True)
    wait_until_up(process, port, "the bare ASGI app", path="/")
    return process, port


def wait_until_up(
    process: subprocess.Popen[bytes], port: int, name: str, path: str = "/healthz"
) -> None:
    """Wait until the server answers on `path` (any status), or fail if it died.

    Starting several processes on a loaded 2-core machine takes tens of seconds."""
    deadline = time.monotonic() + 240
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            stop(process)
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (its worker processes too) and wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def http_ingress(topics: Topics, count: int, concurrency: int) -> float:
    """Concurrent httpx clients posting one message per request to `escalator connect http`.

    The server runs as its own process, so the load generator does not share its
    interpreter lock (but shares the machine's two cores).
    """
    process, port, key = start_ingress(topics)
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    bodies = [message(i).model_dump_json().encode() for i in range(count)]

    async def drive() -> float:
        queue = iter(bodies)
        deadline = time.monotonic() + TIME_LIMIT_S
        accepted = 0

        async def worker(http: httpx.AsyncClient) -> None:
            nonlocal accepted
            for body in queue:
                if time.monotonic() > deadline:
                    return
                answer = await http.post("/v1/messages", content=body, headers=headers)
                accepted += answer.status_code == 202

        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:
            started = time.perf_counter()
            await asyncio.gather(*(worker(http) for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        assert accepted == count, f"only {accepted} of {count} accepted"
        return accepted / elapsed

    try:
        return asyncio.run(drive())
    finally:
        stop(process)


WRK_SCRIPT = """
counter = 0
local one = '{"channel":"chat","external_id":"wrk-RUN-%d","sender":"visitor-%d",' ..
  '"text":"TEXT","sent_at":"2026-11-20T09:30:00Z"}'
request = function()
  local items = {}
  for i = 1, BATCH do
    counter = counter + 1
    items[i] = string.format(one, counter, counter % 500)
  end
  local body = items[1]
  if BATCH > 1 then body = "[" .. table.concat(items, ",") .. "]" end
  return wrk.format("POST", "/v1/messages",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer KEY"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50),
    latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run measured: answered-2xx requests/s and latency percentiles."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    failed: int


def wrk(port: int, seconds: int, connections: int, batch: int, key: str) -> WrkRun:
    """wrk (one thread, `connections` connections) posting `batch` new messages per request.

    wrk counts answers outside 2xx/3xx and socket errors apart; they are not throughput.
    """
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed: run deploy/test-tools.sh (or make bench)")
    script = Path(f"/tmp/escalator-bench-{uuid.uuid4().hex[:8]}.lua")
    script.write_text(
        WRK_SCRIPT.replace("RUN", uuid.uuid4().hex[:8])
        .replace("TEXT", message(0).text.strip())
        .replace("KEY", key)
        .replace("BATCH", str(batch))
    )
    try:
        result = subprocess.run(
            [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
             f"http://127.0.0.1:{port}/v1/messages"],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )  # fmt: skip
    finally:
        script.unlink()
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", result.stdout)
    if found is None:
        raise RuntimeError(f"unexpected wrk output: {result.stdout}{result.stderr}")
    requests, duration_us, refused, socket_errors, p50_us, p99_us = (int(g) for g in found.groups())
    answered = requests - refused - socket_errors
    failed = refused + socket_errors
    return WrkRun(answered / (duration_us / 1e6), p50_us / 1000, p99_us / 1000, failed)


def wrk_section(topics: Topics, args: argparse.Namespace) -> dict[str, WrkRun]:
    """The bare app and the ingress with single messages, then the ingress with batches."""
    runs: dict[str, WrkRun] = {}
    bare, port = start_bare(args.workers)
    try:
        runs["bare"] = wrk(port, args.wrk_seconds, args.connections, 1, "unused")
    finally:
        stop(bare)
    ingress, port, key = start_ingress(topics, args.workers)
    try:
        runs["single"] = wrk(port, args.wrk_seconds, args.connections, 1, key)
        runs["batched"] = wrk(port, args.wrk_seconds, args.connections, BATCH, key)
    finally:
        stop(ingress)
    return runs


def smtp_ingress(topics: Topics, count: int, connections: int) -> float:
    """`connections` smtplib clients, each sending its share of mails in one session."""
    publisher = KafkaPublisher({"bootstrap.servers": BOOTSTRAP})
    server = SmtpConnector(["acme.test"], MessageSink(publisher, topics.inbound), port=free_port())
    server.start()
    mails = []
    for i in range(count):
        mail = EmailMessage()
        mail["From"] = f"customer{i % 500}@example.com"
        mail["To"] = "help@acme.test"
        mail["Subject"] = "Parcel missing"
        mail["Message-ID"] = f"<bench-{i}@example.com>"
        mail.set_content(message(i).text)
        mails.append(mail.as_bytes())
    deadline = time.monotonic() + TIME_LIMIT_S

    def send(share: list[bytes]) -> int:
        with smtplib.SMTP(*server.address, timeout=30) as client:
            for raw in share:
                if time.monotonic() > deadline:
                    break
                client.sendmail("c@example.com", ["help@acme.test"], raw)
        return len(share)

    shares = [mails[i::connections] for i in range(connections)]
    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        sent = sum(pool.map(send, shares))
    elapsed = time.perf_counter() - started
    server.stop()
    publisher.close()
    return sent / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=0, help="server processes, 0 = per core")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--produce", type=int, default=100_000, help="messages, produce loop")
    parser.add_argument("--http", type=int, default=5000, help="messages through httpx, 0: skip")
    parser.add_argument("--smtp", type=int, default=2000, help="mails through SMTP, 0: skip")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP clients in flight")
    parser.add_argument("--smtp-connections", type=int, default=8, help="SMTP client sessions")
    args = parser.parse_args()
    args.workers = worker_count(args.workers)
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(topics.inbound, 4, 1)]).values():
        future.result(30)
    try:
        baseline = bare_produce(topics, args.produce)
        runs = wrk_section(topics, args)
        http = http_ingress(topics, args.http, args.concurrency) if args.http else None
        smtp = smtp_ingress(topics, args.smtp, args.smtp_connections) if args.smtp else None
    finally:
        for future in admin.delete_topics([topics.inbound]).values():
            future.result(30)
    bare, single, batched = runs["bare"], runs["single"], runs["batched"]
    batched_messages = batched.requests_per_s * BATCH
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load average {load[0]:.2f}; "
        f"{args.workers} server process(es), wrk -t1 -c{args.connections} -d{args.wrk_seconds}s"
    )
    print(f"{'path':<50}{'req/s':>9}{'msgs/s':>10}{'p99 ms':>8}{'ratio':>8}")
    rows = [
        ("bare ASGI app, 202 without Kafka (baseline)", bare, bare.requests_per_s, 1.0),
        ("ingress, 1 message/request, vs bare app", single, single.requests_per_s,
         single.requests_per_s / bare.requests_per_s),
        (f"ingress, {BATCH} messages/request, vs produce loop", batched, batched_messages,
         batched_messages / baseline),
    ]  # fmt: skip
    for label, run, messages, ratio in rows:
        print(f"{label:<50}{run.requests_per_s:>9,.0f}{messages:>10,.0f}{run.p99_ms:>8.1f}"
              f"{ratio:>7.2f}x")  # fmt: skip
    print(f"{'bare confluent-kafka produce loop (baseline)':<50}{'':>9}{baseline:>10,.0f}")
    if http is not None:
        print(f"{'ingress, httpx clients, vs produce loop':<50}{'':>9}{http:>10,.0f}"
              f"{'':>8}{http / baseline:>7.2f}x")  # fmt: skip
    if smtp is not None:
        print(f"{'SMTP (aiosmtpd, 1 mail/transaction)':<50}{'':>9}{smtp:>10,.0f}"
              f"{'':>8}{smtp / baseline:>7.2f}x")  # fmt: skip
    print(
        json.dumps(
            {
                "workers": args.workers,
                "bare_asgi_requests_per_s": round(bare.requests_per_s, 1),
                "single_requests_per_s": round(single.requests_per_s, 1),
                "single_vs_bare": round(single.requests_per_s / bare.requests_per_s, 3),
                "single_p99_ms": single.p99_ms,
                "batched_messages_per_s": round(batched_messages, 1),
                "bare_produce_messages_per_s": round(baseline, 1),
                "batched_vs_produce": round(batched_messages / baseline, 3),
                "batched_p99_ms": batched.p99_ms,
                "failed_requests": bare.failed + single.failed + batched.failed,
                "httpx_messages_per_s": None if http is None else round(http, 1),
                "smtp_messages_per_s": None if smtp is None else round(smtp, 1),
                "load_average": round(load[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
