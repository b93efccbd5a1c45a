"""Garbage-collection pauses in a worker holding many open cases (issue 13).

Builds, in this process and without Kafka, what a worker holds after restoring its
partitions: the worker's modules (`escalator.wiring`, faust and all), stage C's case
states (compressed JSON bytes, `streams.rebalance.case_store`), stage B's per-customer
states, and the deadline index as a restore rebuilds it. Then measures:

1. a full (generation 2) collection, `gc.collect(2)`, with nothing held (the floor) and
   with N cases held; the median of 5;
2. a stage-C-like workload (decide a message with the real rule engine, encode and pack
   the state, reschedule its deadline) with the collector as Python sets it by default
   and as the worker tunes it (`metricsio.gc_tuning.tune_collector`: a collection,
   `gc.freeze()`, the youngest generation's threshold at 10,000): collections per
   generation and their pauses, timed with `gc.callbacks`;
3. the full collection again once the held objects are frozen.

Run: `python bench/worker_gc.py` (1,000,000 cases; `--cases` for fewer).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import escalator.wiring  # noqa: E402, F401  (the worker process's modules, as at start-up)
from metricsio.gc_tuning import CollectionTimer, tune_collector  # noqa: E402
from rules import compile_sources  # noqa: E402
from schemas import InboundMessage, Topics  # noqa: E402
from schemas.ids import case_id_for  # noqa: E402
from streams.case_state import CaseState  # noqa: E402
from streams.casework import apply_message  # noqa: E402
from streams.deadlines import DeadlineIndex  # noqa: E402
from streams.rebalance import case_store, customer_store  # noqa: E402
from streams.records import ThreadedMessage  # noqa: E402
from streams.worker_config import WorkerConfig  # noqa: E402

PARTITIONS = 4
RULES = """
version: 1
calendars: {always: 24x7}
sla:
  standard:
    calendar: always
    targets: {normal: {first_response: 8h, resolution: 5d}}
    warn_at: 75%
escalations:
  standard: [{on: breach, queue: tier2, priority: +1}]
queues: {general: {}, tier2: {}}
routes: {queue: general, priority: normal, sla: standard, escalation: standard}
"""
RULESET = compile_sources({"bench.yaml": RULES})


def threaded(number: int, at: datetime) -> ThreadedMessage:
    """A customer's first message, opening a case of its own."""
    message = InboundMessage(
        channel="email",
        external_id=f"m-{number}",
        sender=f"customer{number}@example.com",
        sent_at=at,
        text="I was charged twice for order A-1234, please refund one of them.",
        subject="Charged twice",
    )
    return ThreadedMessage(
        case_id=case_id_for(f"cus-{number}", f"m-{number}"),
        customer_id=f"cus-{number}",
        opens_case=True,
        evidence="bench",
        message=message,
        ingested_at=at,
    )


def cases(count: int, at: datetime) -> Iterator[tuple[int, bytes, bytes, datetime]]:
    """`count` open cases from one decided template: partition, key, JSON, next deadline."""
    state = apply_message(None, threaded(0, at), RULESET).state
    text, case_id = state.model_dump_json(), state.case_id
    for number in range(count):
        own = f"C-{number:08d}"
        deadline = at + timedelta(seconds=number % 86_400)  # its own object, as a restore's
        yield number % PARTITIONS, own.encode(), text.replace(case_id, own).encode(), deadline


def full_collection_ms(rounds: int = 5) -> float:
    """Median milliseconds of `gc.collect(2)`."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        gc.collect(2)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class Pauses(CollectionTimer):
    """Collections per generation and their pauses, timed as the worker times them."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = defaultdict(list)
        super().__init__(lambda generation, seconds: self.times[generation].append(seconds))

    def report(self, messages: int) -> str:
        parts = []
        for generation in (0, 1, 2):
            times = self.times.get(generation, [])
            worst = max(times, default=0.0) * 1000
            parts.append(
                f"gen{generation}: {len(times)} collections, "
                f"total {sum(times) * 1000:.0f} ms, max {worst:.1f} ms"
            )
        return f"{messages:,} messages: " + "; ".join(parts)


def workload(store: Any, deadlines: DeadlineIndex, messages: int, at: datetime) -> str:
    """Stage C's allocation pattern per message, with collections timed."""
    pauses = Pauses()
    gc.callbacks.append(pauses)
    try:
        for number in range(messages):
            update = apply_message(None, threaded(10_000_000 + number, at), RULESET)
            state: CaseState = update.state
            encoded = store.encode(state)
            partition = number % PARTITIONS
            store.hold(partition, [(state.case_id.encode(), encoded.value)])
            deadlines.schedule(partition, state.case_id.encode(), encoded.deadline)
    finally:
        gc.callbacks.remove(pauses)
    return pauses.report(messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    gc.collect()
    floor = full_collection_ms()
    print(
        f"1. worker modules only: {len(gc.get_objects()):,} tracked objects, "
        f"full collection {floor:.1f} ms"
    )
    config = WorkerConfig(broker_url="kafka://localhost:9092", topics=Topics("benchgc."))
    store, customers, deadlines = case_store(config), customer_store(config), DeadlineIndex()
    at = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    due: dict[int, list[tuple[bytes, datetime]]] = defaultdict(list)
    for partition, key, document, deadline in cases(args.cases, at):
        store.hold(partition, [(key, document)])
        customers.hold(partition, [(b"cus-" + key, b'{"recent":["' + key + b'"],"open":[]}')])
        due[partition].append((key, deadline))
    for partition, entries in due.items():
        deadlines.replace_partition(partition, entries)
    del due
    built = time.perf_counter() - started
    held = full_collection_ms()
    print(
        f"   {len(store):,} cases held (built in {built:.0f} s): {len(gc.get_objects()):,} "
        f"tracked objects, full collection {held:.1f} ms; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"2. default collector {gc.get_threshold()}: "
        + workload(store, deadlines, args.messages, at)
    )
    started = time.perf_counter()
    tune_collector()
    froze = (time.perf_counter() - started) * 1000
    print(
        f"   tuned collector {gc.get_threshold()}: {gc.get_freeze_count():,} objects frozen "
        f"in {froze:.0f} ms (one full collection, then gc.freeze)"
    )
    print("   " + workload(store, deadlines, args.messages, at))
    frozen = full_collection_ms()
    print(
        f"3. frozen: full collection {frozen:.1f} ms ({len(gc.get_objects()):,} tracked objects "
        f"left); load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
