"""SLA timer benchmark: one worker holding many open clocks.

Measures, with the worker's own components (stage C state store, deadline index, the
clock engine, the confluent-kafka writer):

1. resident memory with N open cases held the way stage C holds them;
2. the cost of a timer tick when nothing is due;
3. breach latency when 10,000 deadlines fall due in the same second: every case is
   loaded, its clocks fired, its events and state written to the local Kafka (acks=all),
   and the latency of each breach is its write acknowledgement minus its deadline, plus
   the timer's tick interval in the worst case;
4. recovery time after a restart: restoring N case states from a changelog topic on the
   local Kafka and rebuilding the deadline index.

Run: `python bench/sla_timers.py` (1,000,000 cases; `--cases` for fewer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connectors.publisher import PRODUCER_DEFAULTS, KafkaPublisher  # noqa: E402
from rules import compile_sources  # noqa: E402
from schemas import InboundMessage  # noqa: E402
from schemas.ids import case_id_for  # noqa: E402
from streams.app import _rebuild_deadlines  # noqa: E402
from streams.case_state import CaseState  # noqa: E402
from streams.casework import apply_message, fire_clocks  # noqa: E402
from streams.deadlines import DeadlineIndex  # noqa: E402
from streams.output import OutputRecord, ReliableWriter  # noqa: E402
from streams.records import ThreadedMessage  # noqa: E402
from streams.state_store import ChangelogState  # noqa: E402
from tests.kafka_support import create_topics  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
PARTITIONS = 4
TICK_SECONDS = 0.2  # the worker's SLA timer interval (WorkerConfig.sla_tick_seconds)
RULES = """
version: 1
calendars: {always: 24x7}
sla:
  standard:
    calendar: always
    targets: {normal: {first_response: 8h, resolution: 5d}}
    warn_at: 75%
  burst:
    calendar: always
    targets: {normal: {first_response: 3s}}
escalations:
  standard: [{on: breach, queue: tier2, priority: +1}]
queues: {general: {}, tier2: {}}
routes:
  queue: general
  priority: normal
  sla: standard
  escalation: standard
  routes:
    - {name: burst, when: {metadata.burst: true}, sla: burst}
"""


def rss_mib() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def template(ruleset, at: datetime, burst: bool) -> dict[str, object]:
    message = InboundMessage(
        channel="email",
        external_id="t-1",
        sender="ana@example.com",
        sent_at=at,
        text="I was charged twice for order A-1234, please refund one of them.",
        subject="Charged twice",
        metadata={"burst": burst},
    )
    threaded = ThreadedMessage(
        case_id=case_id_for("cus", "t-1"),
        customer_id="cus",
        opens_case=True,
        evidence="bench",
        message=message,
        ingested_at=at,
    )
    return apply_message(None, threaded, ruleset).state.model_dump(mode="json")


def clone(state_json: str, case_id: str, number: int) -> dict[str, object]:
    data = json.loads(state_json.replace("C-TEMPLATE00", case_id))
    data["customer_id"] = f"cus-{number}"
    return data


def fill(store: ChangelogState, count: int, base: dict[str, object], prefix: str) -> list[bytes]:
    text = json.dumps(base).replace(str(base["case_id"]), "C-TEMPLATE00")
    keys = []
    for number in range(count):
        case_id = f"C-{prefix}{number:08d}"
        key = case_id.encode()
        store._partitions.setdefault(number % PARTITIONS, {})[key] = clone(text, case_id, number)
        keys.append(key)
    return keys


async def burst(ruleset, count: int, topic: str) -> list[float]:
    """`count` cases due in the same second: fire them as the worker's timer would."""
    opened = datetime.now(UTC).replace(microsecond=0)
    base = template(ruleset, opened, burst=True)
    store = ChangelogState("cases", topic, "bench", {"bootstrap.servers": BOOTSTRAP})
    keys = fill(store, count, base, "B")
    deadlines = DeadlineIndex()
    _rebuild_deadlines(deadlines, store)
    publisher = KafkaPublisher({"bootstrap.servers": BOOTSTRAP}, delivery_timeout_seconds=60)
    writer = ReliableWriter(publisher)
    first_response = next(c for c in base["clocks"]["clocks"] if c["name"] == "first_response")  # type: ignore[index]
    due_at = datetime.fromisoformat(first_response["due_at"])  # the breach instant
    for number, key in enumerate(keys):
        deadlines.schedule(number % PARTITIONS, key, due_at)
    while datetime.now(UTC) < due_at:
        await asyncio.sleep(0.01)
    now = datetime.now(UTC)
    started = time.perf_counter()
    fired, outputs = [], []
    for partition, key, _deadline in deadlines.pop_due(now):
        state = store.load(partition, key, CaseState)
        assert state is not None
        update = fire_clocks(state, ruleset, now)
        assert any(e.type == "sla.breached" for e in update.events)
        outputs += [OutputRecord(topic, key, e.model_dump_json().encode()) for e in update.events]
        fired.append(time.perf_counter() - started)
    computed = time.perf_counter() - started
    await writer.write(outputs)  # the worker acknowledges all of a tick's writes together
    written = time.perf_counter() - started
    publisher.close()
    lateness = (now - due_at).total_seconds()
    print(
        f"  burst: {len(fired):,} breaches computed in {computed:.2f}s, "
        f"{len(outputs):,} events written (acks=all) by {written:.2f}s"
    )
    return [lateness + written + TICK_SECONDS for _ in fired]


def recovery(count: int, base: dict[str, object], topic: str) -> tuple[float, float]:
    """Write `count` states to a changelog topic, then time a restore + index rebuild."""
    text = json.dumps(base).replace(str(base["case_id"]), "C-TEMPLATE00")
    producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": BOOTSTRAP, "linger.ms": 20})
    for number in range(count):
        case_id = f"C-R{number:08d}"
        value = text.replace("C-TEMPLATE00", case_id).encode()
        while True:
            try:
                producer.produce(
                    topic, key=case_id.encode(), value=value, partition=number % PARTITIONS
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)
    store = ChangelogState("cases", topic, "bench", {"bootstrap.servers": BOOTSTRAP})
    started = time.perf_counter()
    store.assign(range(PARTITIONS))
    restored = time.perf_counter() - started
    deadlines = DeadlineIndex()
    _rebuild_deadlines(deadlines, store)
    return restored, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--burst", type=int, default=10_000)
    args = parser.parse_args()
    ruleset = compile_sources({"bench.yaml": RULES})
    prefix = f"benchsla{uuid.uuid4().hex[:6]}."
    events_topic, changelog = f"{prefix}cases.events", f"{prefix}worker.cases.changelog"
    create_topics(BOOTSTRAP, [events_topic], partitions=PARTITIONS)
    create_topics(
        BOOTSTRAP, [changelog], partitions=PARTITIONS, config={"cleanup.policy": "compact"}
    )
    base = template(ruleset, datetime.now(UTC), burst=False)

    before = rss_mib()
    store = ChangelogState("cases", changelog, "bench", {"bootstrap.servers": BOOTSTRAP})
    started = time.perf_counter()
    fill(store, args.cases, base, "M")
    deadlines = DeadlineIndex()
    _rebuild_deadlines(deadlines, store)
    held = rss_mib() - before
    built = time.perf_counter() - started
    per_case = held * 2**20 / args.cases
    print(
        f"1. {args.cases:,} open cases held: {held:,.0f} MiB resident "
        f"({per_case:,.0f} bytes/case), built in {built:.1f}s"
    )

    now = datetime.now(UTC)
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        assert not deadlines.pop_due(now)
    tick_us = (time.perf_counter() - started) / rounds * 1e6
    print(f"2. idle timer tick with {len(deadlines):,} deadlines indexed: {tick_us:.2f} µs")
    del store, deadlines

    latencies = asyncio.run(burst(ruleset, args.burst, events_topic))
    p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1]
    print(
        f"3. {args.burst:,} deadlines in one second: breach latency p50 "
        f"{statistics.median(latencies):.2f}s, p99 {p99:.2f}s "
        f"(includes the {TICK_SECONDS}s tick; target p99 <= 1s)"
    )

    restored, rebuilt = recovery(args.cases, base, changelog)
    print(
        f"4. restart: {args.cases:,} states restored from Kafka in {restored:.1f}s, "
        f"ready with the deadline index in {rebuilt:.1f}s (target <= 60s)"
    )
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
