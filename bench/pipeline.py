"""Pipeline benchmark: the Escalator worker against two baselines, on the same messages.

For each system (the worker; a trivial faust forwarder; a raw confluent-kafka loop):
- throughput: N messages are pre-filled into a fresh inbound topic, the system is started,
  and the rate is N over the span between its first and last output record timestamps;
- latency: on a fresh topic, with the system running, messages are produced at a paced
  rate below capacity, and each output record's timestamp minus its input record's
  timestamp gives the ingest-to-routed latency (p50/p99).

Run it with `make bench` (starts the local Apache Kafka) or `python bench/pipeline.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from escalator.demo import processes  # noqa: E402
from escalator.demo.traffic import TrafficGenerator  # noqa: E402
from schemas import Topics  # noqa: E402
from tests.kafka_support import Record, consume_until, create_topics  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
PARTITIONS = 4


@dataclass
class Result:
    system: str
    messages: int
    per_second: float
    p50_ms: float | None = None
    p99_ms: float | None = None


def messages(count: int, seed: int) -> list[dict[str, object]]:
    generator = TrafficGenerator(customers=5000, seed=seed, invalid_share=0, duplicate_share=0)
    return [generator.next_request().body for _ in range(count)]  # type: ignore[misc]


def produce(topic: str, batch: list[dict[str, object]], per_second: float | None = None) -> None:
    producer = Producer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "linger.ms": 5 if per_second is None else 0,
            "partitioner": "murmur2_random",
            "acks": "all",
        }
    )
    started = time.perf_counter()
    for index, message in enumerate(batch):
        if per_second is not None:
            delay = started + index / per_second - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        producer.produce(
            topic, key=str(message["sender"]).encode(), value=json.dumps(message).encode()
        )
        producer.poll(0)
    producer.flush(60)


def start_system(system: str, prefix: str, workdir: Path) -> processes.ManagedProcess:
    topics = Topics(prefix)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATOR_TOPIC_PREFIX": prefix,
        "ESCALATOR_DATA_DIR": str(workdir),
        "ESCALATOR_LOG_LEVEL": "WARNING",
    }
    port = processes.free_port()
    logs = workdir / "logs"
    if system == "escalator worker":
        process = processes.start(
            system.replace(" ", "-"), ["worker", "--web-port", str(port)], env, logs
        )
        processes.wait_until_ready(f"http://127.0.0.1:{port}/readyz", process, 120)
        return process
    script = "_faust_forward.py" if system == "faust forward" else "_raw_forward.py"
    args = [str(REPO / "bench" / script), topics.inbound, output_topic(system, topics)]
    if system == "faust forward":
        args.append(str(port))
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{script}.log").open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return processes.ManagedProcess(system, popen, logs / f"{script}.log")


def output_topic(system: str, topics: Topics) -> str:
    return topics.queue("general") if system == "escalator worker" else f"{topics.prefix}forwarded"


def external_id(record: Record, system: str) -> str:
    value = json.loads(record.value or b"{}")
    if system == "escalator worker":
        return str(value["messages"][-1]["external_id"])
    return str(value["external_id"])


def fresh_topics(system: str) -> Topics:
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}.")
    create_topics(BOOTSTRAP, [topics.inbound, output_topic(system, topics)], partitions=PARTITIONS)
    return topics


def throughput(system: str, batch: list[dict[str, object]], workdir: Path) -> float:
    topics = fresh_topics(system)
    produce(topics.inbound, batch)
    process = start_system(system, topics.prefix, workdir / f"tp-{system.replace(' ', '-')}")
    try:
        out = consume_until(BOOTSTRAP, output_topic(system, topics), len(batch), timeout=900)
    finally:
        process.stop()
    stamps = sorted(r.timestamp_ms for r in out)
    return len(out) / max((stamps[-1] - stamps[0]) / 1000, 1e-3)


def latency(
    system: str, batch: list[dict[str, object]], rate: float, workdir: Path
) -> tuple[float, float]:
    topics = fresh_topics(system)
    process = start_system(system, topics.prefix, workdir / f"lat-{system.replace(' ', '-')}")
    try:
        time.sleep(2)
        produce(topics.inbound, batch, per_second=rate)
        out = consume_until(BOOTSTRAP, output_topic(system, topics), len(batch), timeout=300)
        sent = consume_until(BOOTSTRAP, topics.inbound, len(batch), timeout=60)
    finally:
        process.stop()
    sent_at = {str(json.loads(r.value or b"{}")["external_id"]): r.timestamp_ms for r in sent}
    delays = sorted(r.timestamp_ms - sent_at[external_id(r, system)] for r in out)
    return statistics.median(delays), delays[int(len(delays) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--latency-messages", type=int, default=3_000)
    parser.add_argument("--rate", type=float, default=200.0, help="paced rate for latency")
    args = parser.parse_args()
    workdir = REPO / "var" / "bench"
    systems = ["escalator worker", "faust forward", "raw confluent loop"]
    results: list[Result] = []
    for system in systems:
        rate = throughput(system, messages(args.messages, seed=1), workdir)
        p50, p99 = latency(system, messages(args.latency_messages, seed=2), args.rate, workdir)
        results.append(Result(system, args.messages, rate, p50, p99))
        print(f"{system}: {rate:,.0f} msg/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)
    worker = results[0]
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, broker {BOOTSTRAP}"
    )
    print(
        f"| system | msg/s ({args.messages:,} pre-filled) | vs worker | p50 ms | p99 ms "
        f"(paced {args.rate:.0f}/s) |"
    )
    print("|---|---:|---:|---:|---:|")
    for result in results:
        ratio = result.per_second / worker.per_second
        print(
            f"| {result.system} | {result.per_second:,.0f} | {ratio:.2f}x | "
            f"{result.p50_ms:.0f} | {result.p99_ms:.0f} |"
        )


if __name__ == "__main__":
    main()
