"""Accepted messages/s through the HTTP ingress and the SMTP connector, against a bare
confluent-kafka produce loop of the same messages in the same run (loopback only, bounded).

The HTTP ingress is driven twice: by Python httpx clients (which saturate first: the
client is the limit) and, when `wrk` is installed, by wrk with a Lua script posting one new
message per request (the ingress is the limit).

Run: .venv/bin/python bench/ingress.py [--http N] [--smtp N] [--concurrency C] [--wrk-seconds S]
Needs Kafka at KAFKA_BOOTSTRAP_SERVERS (default localhost:9092); topics are created under a
fresh prefix and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
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
from schemas import InboundMessage, Topics

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
TIME_LIMIT_S = 120.0


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


def start_ingress(topics: Topics) -> tuple[subprocess.Popen[bytes], int, str]:
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
    process = subprocess.Popen([escalator, "connect", "http", "--port", str(port)], env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("escalator connect http did not start")
        time.sleep(0.2)
    return process, port, key


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
        process.terminate()
        process.wait(30)


WRK_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
    '{"channel":"chat","external_id":"wrk-%s-%d","sender":"visitor-%d",' ..
    '"text":"%s","sent_at":"2026-11-20T09:30:00Z"}',
    "RUN", counter, counter % 500, "TEXT")
  return wrk.format("POST", "/v1/messages",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer KEY"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50)))
end
"""


def wrk_ingress(topics: Topics, seconds: int, connections: int) -> tuple[float, float] | None:
    """wrk (one thread, `connections` connections) posting one new message per request.

    Returns (accepted messages/s, median latency in ms), or None without wrk. Accepted =
    requests answered 202: wrk counts any non-2xx/3xx answer and socket error apart.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = Path(f"/tmp/escalator-bench-{uuid.uuid4().hex[:8]}.lua")
    text = message(0).text.strip()
    process, port, key = start_ingress(topics)
    script.write_text(
        WRK_SCRIPT.replace("RUN", uuid.uuid4().hex[:8]).replace("TEXT", text).replace("KEY", key)
    )
    try:
        url = f"http://127.0.0.1:{port}"
        result = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        process.terminate()
        process.wait(30)
        script.unlink()
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", result.stdout)
    if found is None:
        raise RuntimeError(f"unexpected wrk output: {result.stdout}{result.stderr}")
    requests, duration_us, refused, socket_errors, p50_us = (int(g) for g in found.groups())
    accepted = requests - refused - socket_errors
    return accepted / (duration_us / 1e6), p50_us / 1000


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
    parser.add_argument("--http", type=int, default=5000, help="messages through HTTP")
    parser.add_argument("--smtp", type=int, default=2000, help="mails through SMTP")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP clients in flight")
    parser.add_argument("--connections", type=int, default=8, help="SMTP client sessions")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="wrk run length")
    args = parser.parse_args()
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(topics.inbound, 4, 1)]).values():
        future.result(30)
    try:
        baseline = bare_produce(topics, max(args.http, args.smtp))
        http = http_ingress(topics, args.http, args.concurrency)
        wrk = wrk_ingress(topics, args.wrk_seconds, args.concurrency)
        smtp = smtp_ingress(topics, args.smtp, args.connections)
    finally:
        for future in admin.delete_topics([topics.inbound]).values():
            future.result(30)
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(f"{'path':<42}{'msgs/s':>10}{'vs bare produce':>18}")
    print(f"{'bare confluent-kafka produce loop':<42}{baseline:>10,.0f}{1.0:>17.3f}x")
    print(f"{'HTTP POST /v1/messages, httpx clients':<42}{http:>10,.0f}{http / baseline:>17.3f}x")
    if wrk is None:
        print("HTTP POST /v1/messages, wrk: not run (wrk is not installed)")
    else:
        rate, p50 = wrk
        label = f"HTTP POST /v1/messages, wrk (p50 {p50:.1f} ms)"
        print(f"{label:<42}{rate:>10,.0f}{rate / baseline:>17.3f}x")
    print(f"{'SMTP (aiosmtpd, 1 mail/transaction)':<42}{smtp:>10,.0f}{smtp / baseline:>17.3f}x")


if __name__ == "__main__":
    main()
