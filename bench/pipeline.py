"""Pipeline benchmark: the Escalator worker against two baselines, on the same messages.

For each system (the worker; a trivial faust forwarder; a raw confluent-kafka loop):
- throughput: N messages are pre-filled into a fresh inbound topic, the system is started,
  and the rate is N over the span between its first and last output record timestamps;
- latency: on a fresh topic, with the system running, messages are produced at a paced
  rate below capacity, and each output record's timestamp minus its input record's
  timestamp gives the ingest-to-routed latency (p50/p99); for the worker also per stage,
  from the timestamps of its internal records (`messages.resolved`, `messages.threaded`).

Two consume-only baselines run on the same pre-filled messages (`bench/_consume_only.py`): a
faust agent with `take_events(1000)` and a raw confluent-kafka loop. They give the ceiling
the worker is judged against (issue 13: worker msg/s over faust consume-only msg/s), and
the worker's own CPU per message is its process CPU over the run minus the faust agent's.

Run it with `make bench` (starts the local Apache Kafka) or `python bench/pipeline.py`.
`--json` prints one JSON object with every figure as the last line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._open_cases import case_template, distinct_cases, write_changelog  # noqa: E402
from escalator.demo import processes  # noqa: E402
from escalator.demo.traffic import TrafficGenerator  # noqa: E402
from escalator.settings import Settings  # noqa: E402
from escalator.wiring import load_rules  # noqa: E402
from schemas import Topics  # noqa: E402
from tests.kafka_support import Record, consume_until, create_topics  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
PARTITIONS = 4
RULES = REPO / "examples" / "rules"
"""The worker decides with the example organisation's rules: SLA clocks, routes, steps."""
RULESET = load_rules(Settings(rules=RULES))
QUEUES = sorted(RULESET.queues)
CUSTOMERS = 10_000


@dataclass
class Result:
    system: str
    messages: int
    per_second: float
    p50_ms: float | None = None
    p99_ms: float | None = None


def messages(count: int, seed: int) -> list[dict[str, object]]:
    generator = TrafficGenerator(customers=CUSTOMERS, seed=seed, invalid_share=0, duplicate_share=0)
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
        "ESCALATOR_RULES": str(RULES),
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
    [forwarded] = output_topics(system, topics)
    args = [str(REPO / "bench" / script), topics.inbound, forwarded]
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


def output_topics(system: str, topics: Topics) -> list[str]:
    """Where the system writes: the worker, every queue of the rules; a forwarder, one topic."""
    if system == "escalator worker":
        return [topics.queue(queue) for queue in QUEUES]
    return [f"{topics.prefix}forwarded"]


class FirstOutputs:
    """`consume_until`'s condition: every message has its first output; and those outputs.

    A worker writes a queue record per routed message, and a second one to the queue a
    case leaves when it moves: each message counts once, at its first record.
    """

    def __init__(self, system: str, count: int) -> None:
        self.system = system
        self.count = count
        self.first: dict[str, Record] = {}
        self._read = 0

    def __call__(self, records: list[Record]) -> bool:
        for record in records[self._read :]:
            self.first.setdefault(external_id(record, self.system), record)
        self._read = len(records)
        return len(self.first) >= self.count


def external_id(record: Record, system: str) -> str:
    value = json.loads(record.value or b"{}")
    if system == "escalator worker":
        return str(value["messages"][-1]["external_id"])
    return str(value["external_id"])


def fresh_topics(system: str) -> Topics:
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}.")
    wanted = [topics.inbound, *output_topics(system, topics)]
    create_topics(BOOTSTRAP, wanted, partitions=PARTITIONS)
    return topics


def seed_open_cases(topics: Topics, count: int) -> None:
    """`count` open cases in the worker's cases changelog, deadlines hours ahead."""
    changelog = topics.state_changelog("cases")
    compacted = {"cleanup.policy": "compact"}
    create_topics(BOOTSTRAP, [changelog], partitions=PARTITIONS, config=compacted)
    text, case_id, deadline = case_template(RULESET, datetime.now(UTC))
    write_changelog(
        {"bootstrap.servers": BOOTSTRAP},
        changelog,
        distinct_cases(text, case_id, count, "open"),
        deadline,
        PARTITIONS,
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(
    system: str,
    batch: list[dict[str, object]],
    workdir: Path,
    attached: Callable[[int], AbstractContextManager[object]] | None = None,
) -> tuple[float, float]:
    """Messages per second, and the process's CPU seconds per message over the run.

    `attached`, given the system's pid once it is ready, is entered while it works through
    the batch (`bench/_profile_worker.py` samples it with py-spy).
    """
    topics = fresh_topics(system)
    produce(topics.inbound, batch)
    process = start_system(system, topics.prefix, workdir / f"tp-{system.replace(' ', '-')}")
    pid = process.process.pid
    try:
        with attached(pid) if attached else contextlib.nullcontext():
            cpu_before = cpu_seconds(pid)
            outputs = FirstOutputs(system, len(batch))
            consume_until(BOOTSTRAP, output_topics(system, topics), outputs, timeout=900)
            cpu_used = cpu_seconds(pid) - cpu_before
    finally:
        process.stop()
    out = list(outputs.first.values())
    stamps = sorted(r.timestamp_ms for r in out)
    return len(out) / max((stamps[-1] - stamps[0]) / 1000, 1e-3), cpu_used / len(out)


def consume_only(kind: str, batch: list[dict[str, object]], workdir: Path) -> tuple[float, float]:
    """A consume-only baseline (`faust` or `raw`): msg/s and CPU seconds per message."""
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}.")
    create_topics(BOOTSTRAP, [topics.inbound], partitions=PARTITIONS)
    produce(topics.inbound, batch)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result = workdir / f"consume-{kind}.json"
    result.unlink(missing_ok=True)
    args = [str(REPO / "bench" / "_consume_only.py"), kind, topics.inbound, str(len(batch))]
    args.append(str(result))
    if kind == "faust":
        args.append(str(processes.free_port()))
    with (logs / f"consume-{kind}.log").open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = processes.ManagedProcess(f"consume-{kind}", popen, logs / f"consume-{kind}.log")
    try:
        deadline = time.monotonic() + 900
        while not result.exists():
            assert process.alive, process.log_path.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, f"{kind} consumer never finished"
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written in one call; let it land
    finally:
        process.stop()
    figures = json.loads(result.read_text())
    records = int(figures["records"])
    return records / max(float(figures["seconds"]), 1e-3), float(figures["cpu_seconds"]) / records


def latency(
    system: str, batch: list[dict[str, object]], rate: float, workdir: Path, open_cases: int
) -> tuple[float, float, dict[str, tuple[float, float]]]:
    """p50 and p99 ingest-to-output latency in ms, and for the worker the same per stage
    (from the timestamps of its internal records: intake, threading, cases). The worker
    starts holding `open_cases` open cases, its SLA timer running with their deadlines."""
    topics = fresh_topics(system)
    if system == "escalator worker" and open_cases:
        seed_open_cases(topics, open_cases)
    process = start_system(system, topics.prefix, workdir / f"lat-{system.replace(' ', '-')}")
    try:
        time.sleep(2)
        produce(topics.inbound, batch, per_second=rate)
        outputs = FirstOutputs(system, len(batch))
        consume_until(BOOTSTRAP, output_topics(system, topics), outputs, timeout=300)
        out = list(outputs.first.values())
        sent = consume_until(BOOTSTRAP, topics.inbound, len(batch), timeout=60)
        stages = (
            [
                consume_until(BOOTSTRAP, topic, len(batch), timeout=60)
                for topic in (topics.resolved, topics.threaded)
            ]
            if system == "escalator worker"
            else []
        )
    finally:
        process.stop()
    sent_at = {str(json.loads(r.value or b"{}")["external_id"]): r.timestamp_ms for r in sent}
    done_at = {external_id(r, system): r.timestamp_ms for r in out}
    hops: dict[str, tuple[float, float]] = {}
    if stages:
        resolved, threaded = (
            {
                str(json.loads(r.value or b"{}")["message"]["external_id"]): r.timestamp_ms
                for r in records
            }
            for records in stages
        )
        for name, before, after in (
            ("intake", sent_at, resolved),
            ("threading", resolved, threaded),
            ("cases", threaded, done_at),
        ):
            hops[name] = percentiles([after[key] - before[key] for key in after if key in before])
    p50, p99 = percentiles([r.timestamp_ms - sent_at[external_id(r, system)] for r in out])
    return p50, p99, hops


def percentiles(delays: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile of these delays."""
    ordered = sorted(delays)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--latency-messages", type=int, default=3_000)
    parser.add_argument("--rate", type=float, default=200.0, help="paced rate for latency")
    parser.add_argument(
        "--open-cases",
        type=int,
        default=100_000,
        help="open cases the worker holds during the latency run (its SLA timer active)",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    args = parser.parse_args()
    workdir = REPO / "var" / "bench"
    systems = ["escalator worker", "faust forward", "raw confluent loop"]
    results: list[Result] = []
    cpu_per_message: dict[str, float] = {}
    worker_hops: dict[str, tuple[float, float]] = {}
    for system in systems:
        rate, cpu = throughput(system, messages(args.messages, seed=1), workdir)
        cpu_per_message[system] = cpu
        p50, p99, hops = latency(
            system, messages(args.latency_messages, seed=2), args.rate, workdir, args.open_cases
        )
        worker_hops = worker_hops or hops
        results.append(Result(system, args.messages, rate, p50, p99))
        print(f"{system}: {rate:,.0f} msg/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)
        for stage, (hop50, hop99) in hops.items():
            print(f"  stage {stage}: p50 {hop50:.0f} ms, p99 {hop99:.0f} ms", flush=True)
    baselines: dict[str, tuple[float, float]] = {}
    for kind in ("faust", "raw"):
        baselines[kind] = consume_only(kind, messages(args.messages, seed=1), workdir)
        print(f"{kind} consume only: {baselines[kind][0]:,.0f} msg/s", flush=True)
    worker = results[0]
    load = os.getloadavg()
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, broker {BOOTSTRAP}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
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
    for kind, (rate, _cpu) in baselines.items():
        print(f"| {kind} consume only | {rate:,.0f} | {rate / worker.per_second:.2f}x | | |")
    faust_rate, faust_cpu = baselines["faust"]
    own_cpu_us = (cpu_per_message["escalator worker"] - faust_cpu) * 1e6
    print(
        f"worker / faust consume only: {worker.per_second / faust_rate:.2f}x; "
        f"worker CPU per message beyond faust's: {own_cpu_us:.0f} µs"
    )
    if args.json:
        figures = {
            "worker_msg_per_s": round(worker.per_second, 1),
            "faust_consume_msg_per_s": round(faust_rate, 1),
            "raw_consume_msg_per_s": round(baselines["raw"][0], 1),
            "faust_forward_msg_per_s": round(results[1].per_second, 1),
            "raw_forward_msg_per_s": round(results[2].per_second, 1),
            "worker_vs_faust_consume": round(worker.per_second / faust_rate, 3),
            "worker_cpu_us_per_msg": round(cpu_per_message["escalator worker"] * 1e6, 1),
            "faust_consume_cpu_us_per_msg": round(faust_cpu * 1e6, 1),
            "own_cpu_us_per_msg": round(own_cpu_us, 1),
            "latency_p50_ms": worker.p50_ms,
            "latency_p99_ms": worker.p99_ms,
            "stage_latency_ms": {stage: list(hop) for stage, hop in worker_hops.items()},
            "rate": args.rate,
            "messages": args.messages,
            "customers": CUSTOMERS,
            "open_cases": args.open_cases,
            "rules": str(RULES.relative_to(REPO)),
            "load_average": [round(value, 2) for value in load],
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
