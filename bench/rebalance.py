"""Scale-out benchmark: a worker joins, then leaves, a running group under load.

On the local Kafka, with 1,000,000 open cases spread over stage C's partitions:

1. the cases' states are seeded into stage C's changelog (as `bench/sla_timers.py` step 5
   does: JSON values, next deadline in the header, hours away so that nothing fires);
2. one real `escalator worker` (examples/rules) starts, restores them all, and takes a
   paced load of new messages (`--rate`, default 500 msg/s) for the whole run;
3. baseline: over the steady window before the join, the routed throughput and the
   ingest-to-routed latency (p50, p99), and each partition's longest pause in stage C's
   progress (the gap between consecutive writes to its changelog partition);
4. join: a second worker starts; leave: later it is stopped with SIGTERM. Per event, for
   every partition, the longest gap in stage C's progress in the window after the event and
   the time from the event (the second process started / was sent SIGTERM) to the end of
   that gap; the longest gap in the routed output (all queue topics); the latency of the
   messages sent in the window; and how many partitions and states each worker restored
   (from the workers' own `restored N keys for partitions [...]` log lines).

Stage C writes its changelog partition p in the same batch as it routes input partition p,
so a partition's changelog write timestamps are its processing timestamps.

Run: `python bench/rebalance.py` (1,000,000 cases, 4 partitions, about four minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from pipeline import messages  # type: ignore[import-not-found]  # noqa: E402
from sla_timers import template  # type: ignore[import-not-found]  # noqa: E402

from bench._open_cases import distinct_cases, write_changelog  # noqa: E402
from escalator.demo import processes  # noqa: E402
from kafkaio.watermarks import watermarks  # noqa: E402
from schemas import Topics  # noqa: E402
from tests.kafka_support import create_topics  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
CONNECTION = {"bootstrap.servers": BOOTSTRAP}
RESTORED = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\].*?"
    r"(cases|customers): restored (\d+) keys for partitions \[([\d, ]*)\]",
    re.MULTILINE,
)


def seed(topic: str, count: int, partitions: int) -> dict[int, int]:
    """Write `count` open cases' states round-robin over the partitions; their end offsets."""
    text, case_id, deadline = template(datetime.now(UTC), burst=False)
    cases = distinct_cases(text, case_id, count, "S")
    write_changelog(CONNECTION, topic, cases, deadline, partitions)
    consumer = Consumer({**CONNECTION, "group.id": f"{topic}.seeded"})
    try:
        return {p: watermarks(consumer, topic, p, 30)[1] for p in range(partitions)}
    finally:
        consumer.close()


class PacedLoad(threading.Thread):
    """Produces the traffic at a paced rate until stopped; remembers each send time."""

    def __init__(self, topic: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.topic, self.rate = topic, rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        producer = Producer({**CONNECTION, "linger.ms": 0, "partitioner": "murmur2_random"})
        batch = messages(200_000, seed=7)
        started = time.perf_counter()
        while not self.stop.is_set() and self.sent < len(batch):
            delay = started + self.sent / self.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            message = batch[self.sent]
            producer.produce(
                self.topic,
                key=str(message["sender"]).encode(),
                value=json.dumps(message).encode(),
            )
            producer.poll(0)
            self.sent += 1
        producer.flush(60)


def read_all(
    topics: Sequence[str] | str, starts: dict[int, int] | None = None
) -> list[tuple[str, int, int, bytes | None]]:
    """Every record of these topics (from `starts` per partition, or the beginning) to their end:
    (topic, partition, timestamp ms, value)."""
    consumer = Consumer(
        {**CONNECTION, "group.id": f"bench-read-{uuid.uuid4().hex}", "enable.partition.eof": True}
    )
    names = [topics] if isinstance(topics, str) else list(topics)
    assigned = []
    for name in names:
        metadata = consumer.list_topics(name, timeout=30).topics[name]
        for partition in metadata.partitions:
            offset = (starts or {}).get(partition, 0)
            end = consumer.get_watermark_offsets(TopicPartition(name, partition), 30)[1]
            if end > offset:
                assigned.append(TopicPartition(name, partition, offset))
    consumer.assign(assigned)
    pending = {(tp.topic, tp.partition) for tp in assigned}
    out: list[tuple[str, int, int, bytes | None]] = []
    while pending:
        for message in consumer.consume(10_000, 1.0):
            error = message.error()
            if error is not None:
                pending.discard((message.topic(), message.partition()))  # EOF
                continue
            out.append(
                (message.topic(), message.partition(), message.timestamp()[1], message.value())
            )
    consumer.close()
    return out


Restore = tuple[str, int, list[int]]
"""A worker's restore: the store, how many states, which partitions."""


@dataclass
class Event:
    """A join or a leave: when it happened and who restored what after it."""

    name: str
    at: float  # wall clock, seconds
    restored: dict[str, list[Restore]] = field(default_factory=dict)


def restored_lines(log: Path, after: float = 0.0, before: float = 1e12) -> list[Restore]:
    """The `restored N keys for partitions [...]` lines a worker logged between two instants."""
    found = []
    for match in RESTORED.finditer(log.read_text(errors="replace")):
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if after <= at < before:
            partitions = [int(p) for p in match.group(4).split(",") if p.strip()]
            found.append((match.group(2), int(match.group(3)), partitions))
    return found


def gaps(stamps: Sequence[int], start_ms: float, end_ms: float) -> tuple[float, float]:
    """The longest gap between consecutive stamps overlapping [start, end], and where it ended.

    A gap still open at `end` counts up to `end`, and ends there: a partition that never
    resumed within the window shows a pause as long as the window allowed, not none.
    """
    longest, ended = 0.0, start_ms
    before = [s for s in stamps if s < start_ms]
    previous = before[-1] if before else None
    for stamp in [*(s for s in stamps if start_ms <= s <= end_ms), end_ms]:
        if previous is not None and stamp - previous > longest:
            longest, ended = stamp - previous, stamp
        previous = stamp
    return longest, ended


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * share) - 1, 0)]


def start_worker(
    name: str, env: dict[str, str], workdir: Path
) -> tuple[processes.ManagedProcess, int]:
    port = processes.free_port()
    process = processes.start(name, ["worker", "--web-port", str(port)], env, workdir / "logs")
    return process, port


def report(args: argparse.Namespace) -> dict[str, object]:
    prefix = f"benchreb{uuid.uuid4().hex[:6]}."
    topics = Topics(prefix)
    partitions = args.partitions
    workdir = REPO / "var" / "bench" / prefix.rstrip(".")
    changelog = topics.state_changelog("cases")
    create_topics(
        BOOTSTRAP,
        [changelog, topics.state_changelog("customers")],
        partitions=partitions,
        config={"cleanup.policy": "compact"},
    )
    create_topics(BOOTSTRAP, [topics.inbound], partitions=partitions)
    started = time.perf_counter()
    seeded = seed(changelog, args.cases, partitions)
    seconds = time.perf_counter() - started
    print(f"seeded {args.cases:,} open cases, {partitions} partitions, in {seconds:.1f}s")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATOR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATOR_TOPIC_PREFIX": prefix,
        "ESCALATOR_KAFKA_PARTITIONS": str(partitions),
        "ESCALATOR_RULES": str(REPO / "examples" / "rules"),
        "ESCALATOR_LOG_LEVEL": "INFO",
    }
    first, first_port = start_worker(
        "worker-a", {**env, "ESCALATOR_DATA_DIR": str(workdir / "a")}, workdir
    )
    second = None
    load = PacedLoad(topics.inbound, args.rate)
    events: list[Event] = []
    try:
        started = time.perf_counter()
        processes.wait_until_ready(f"http://127.0.0.1:{first_port}/readyz", first, 600)
        while not any(store == "cases" for store, _n, _p in restored_lines(first.log_path)):
            assert first.alive and time.perf_counter() - started < 600, "no restore"
            time.sleep(0.2)  # ready answers before the restore, which runs after the rebalance
        ready_seconds = time.perf_counter() - started
        print(f"worker A ready after {ready_seconds:.1f}s", flush=True)
        load.start()
        time.sleep(args.warmup)
        baseline_from = time.time()
        time.sleep(args.baseline)
        baseline_to = time.time()
        join = Event("join", time.time())
        second, second_port = start_worker(
            "worker-b", {**env, "ESCALATOR_DATA_DIR": str(workdir / "b")}, workdir
        )
        events.append(join)
        processes.wait_until_ready(f"http://127.0.0.1:{second_port}/readyz", second, 600)
        print(f"worker B ready {time.time() - join.at:.1f}s after it started", flush=True)
        time.sleep(args.settle)
        leave = Event("leave", time.time())
        events.append(leave)
        second.stop(60)
        time.sleep(args.settle)
        load.stop.set()
        load.join()
        end_at = time.time()
        time.sleep(5)  # the last messages routed
    finally:
        load.stop.set()
        if second is not None:
            second.stop()
        first.stop(60)
    print(f"worker A at start: {restored_lines(first.log_path, 0, join.at)}")
    join.restored = {
        "A": restored_lines(first.log_path, join.at, leave.at),
        "B": restored_lines(second.log_path),
    }
    leave.restored = {"A": restored_lines(first.log_path, leave.at)}
    return analyse(
        args, topics, seeded, events, (baseline_from, baseline_to), end_at, load.sent, ready_seconds
    )


def analyse(
    args: argparse.Namespace,
    topics: Topics,
    seeded: dict[int, int],
    events: list[Event],
    baseline: tuple[float, float],
    end_at: float,
    sent: int,
    ready_seconds: float,
) -> dict[str, object]:
    changelog = topics.state_changelog("cases")
    progress: dict[int, list[int]] = {p: [] for p in range(args.partitions)}
    for _topic, partition, stamp, _value in read_all(changelog, seeded):
        progress[partition].append(stamp)
    for stamps in progress.values():
        stamps.sort()
    consumer = Consumer({**CONNECTION, "group.id": "bench-list"})
    queue_topics = [
        t for t in consumer.list_topics(timeout=30).topics if t.startswith(f"{topics.prefix}queue.")
    ]
    consumer.close()
    routed = read_all(queue_topics)
    inbound = {
        str(json.loads(v or b"{}")["external_id"]): stamp
        for _t, _p, stamp, v in read_all(topics.inbound)
    }
    done: list[tuple[int, float]] = []  # (routed ms, latency ms) of a message's first routing
    seen: set[str] = set()
    for _t, _p, stamp, value in sorted(routed, key=lambda r: r[2]):
        external = str(json.loads(value or b"{}")["messages"][-1]["external_id"])
        if external in inbound and external not in seen:
            seen.add(external)
            done.append((stamp, stamp - inbound[external]))
    routed_stamps = sorted(stamp for _t, _p, stamp, _v in routed)
    b_from, b_to = (value * 1000 for value in baseline)
    window = [lat for stamp, lat in done if b_from <= stamp <= b_to]
    result: dict[str, object] = {
        "cases": args.cases,
        "partitions": args.partitions,
        "rate": args.rate,
        "sent": sent,
        "routed": len(done),
        "first_ready_seconds": round(ready_seconds, 1),
        "baseline": {
            "routed_msg_per_s": round(len(window) / (b_to - b_from) * 1000, 1),
            "latency_p50_ms": statistics.median(window),
            "latency_p99_ms": percentile(window, 0.99),
            "partition_longest_gap_ms": max(gaps(progress[p], b_from, b_to)[0] for p in progress),
            "routed_longest_gap_ms": gaps(routed_stamps, b_from, b_to)[0],
        },
    }
    base = result["baseline"]
    assert isinstance(base, dict)
    print(
        f"baseline ({args.baseline:.0f}s before the join, one worker): routed "
        f"{base['routed_msg_per_s']:.0f} msg/s at a paced {args.rate:.0f}/s, "
        f"p50 {base['latency_p50_ms']:.0f} ms, p99 {base['latency_p99_ms']:.0f} ms; "
        f"longest pause of a partition {base['partition_longest_gap_ms']:.0f} ms, "
        f"of the routed output {base['routed_longest_gap_ms']:.0f} ms"
    )
    for number, event in enumerate(events):
        start_ms = event.at * 1000
        end_ms = (events[number + 1].at if number + 1 < len(events) else end_at) * 1000
        per_partition = {}
        for partition, stamps in progress.items():
            longest, ended = gaps(stamps, start_ms, end_ms)
            per_partition[partition] = {"pause_ms": longest, "resumed_after_ms": ended - start_ms}
        sent_window = [lat for stamp, lat in done if start_ms <= stamp <= end_ms]
        figures = {
            "partitions": per_partition,
            "all_resumed_after_ms": max(v["resumed_after_ms"] for v in per_partition.values()),
            "longest_partition_pause_ms": max(v["pause_ms"] for v in per_partition.values()),
            "routed_longest_gap_ms": gaps(routed_stamps, start_ms, end_ms)[0],
            "latency_p99_ms": percentile(sent_window, 0.99) if sent_window else None,
            "latency_max_ms": max(sent_window) if sent_window else None,
            "restored": {
                worker: [
                    {"store": store, "keys": keys, "partitions": parts}
                    for store, keys, parts in lines
                ]
                for worker, lines in event.restored.items()
            },
        }
        result[event.name] = figures
        seconds = {
            name: float(figures[name] or 0) / 1000  # type: ignore[arg-type]
            for name in (
                "all_resumed_after_ms",
                "longest_partition_pause_ms",
                "routed_longest_gap_ms",
                "latency_p99_ms",
                "latency_max_ms",
            )
        }
        print(
            f"{event.name}: every partition processing again "
            f"{seconds['all_resumed_after_ms']:.1f}s after the event; longest pause of a "
            f"partition {seconds['longest_partition_pause_ms']:.1f}s, of the routed output "
            f"{seconds['routed_longest_gap_ms']:.1f}s; latency p99 "
            f"{seconds['latency_p99_ms']:.1f}s, max {seconds['latency_max_ms']:.1f}s"
        )
        for partition, values in per_partition.items():
            print(
                f"   partition {partition}: paused {values['pause_ms'] / 1000:.2f}s, processing "
                f"again {values['resumed_after_ms'] / 1000:.2f}s after the event"
            )
        for worker, lines in event.restored.items():
            for store, keys, parts in lines:
                print(f"   worker {worker} restored {keys:,} {store} states for partitions {parts}")
    load = os.getloadavg()
    result["load_average"] = [round(value, 2) for value in load]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=float, default=500.0, help="paced msg/s over the run")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds of load before the baseline"
    )
    parser.add_argument(
        "--baseline", type=float, default=20.0, help="seconds of the baseline window"
    )
    parser.add_argument(
        "--settle", type=float, default=40.0, help="seconds after the join and after the leave"
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    args = parser.parse_args()
    result = report(args)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
