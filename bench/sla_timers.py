"""SLA timer benchmark: one worker holding 1,000,000 open clocks.

Measures, with the worker's own components (stage C's state store and its codec, the
deadline index, the SLA timer loop on the wall clock, `Pipeline.fire_due`, the clock
engine and the confluent-kafka writer), each next to its floor measured in the same run:

1. resident memory with N open cases held the way stage C holds them (compressed JSON
   bytes) plus their deadline index; floor: the process before holding anything;
2. the cost of a timer step when nothing is due (the real `SlaTimer.step`);
3. breach latency when 10,000 more cases fall due in the same second, with the N held:
   the timer wakes at the deadline, fires the cases (after the allowed lateness, 0.1 s)
   in slices and writes each slice's events and queue records, then its state (acks=all);
   a breach's latency is the acknowledgement of its slice's events minus its deadline.
   Twice: with nothing prepared (every case computed at the deadline) and as the worker
   runs by default (firings prepared within the minute before). Floor: a bare
   confluent-kafka producer writing as many records of a case's size, one flush;
4. recovery after a restart: restoring N case states from a changelog topic on the local
   Kafka and rebuilding the deadline index from the record headers; floor: a bare
   confluent-kafka consume of the same topic to its end;
5. breach latency right after a restart: a fresh process (a restarted worker: the
   worker's modules, faust included, imported) runs the worker's own assignment
   (`streams.rebalance.assign_partitions`: restore from the changelog, deadline index,
   `gc.freeze`) with its SLA timer already running, as the worker does. The changelog
   holds the N cases and, per measured delay D (`--after-ready`), 10,000 more cases whose
   warning has fired and whose breach falls due in the same second. The timer's clock is
   the wall clock shifted once, at the instant the assignment returns (ready), so that the
   burst's breach falls due D seconds after ready; nothing is prepared before ready (the
   burst was an hour away). A breach's latency is counted on that clock, from its deadline
   to its slice's acknowledgement, as in 3. Also the process's peak resident memory (the
   worker's footprint with N cases restored and a burst fired). The bench's timer runs
   without stage C's event-time gate (nothing to replay), so the burst may fire at its
   deadline; in the worker a partition fires only after the consumer's first fetch (about
   a second after the restore), and it is prepared meanwhile
   (`tests/streams/test_sla_restart_prepare.py`).

Run: `python bench/sla_timers.py` (1,000,000 cases; `--cases` for fewer).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._open_cases import case_template, distinct_cases  # noqa: E402
from bench._open_cases import write_changelog as seed_changelog  # noqa: E402
from connectors.publisher import PRODUCER_DEFAULTS, KafkaPublisher  # noqa: E402
from metricsio.gc_tuning import tune_collector  # noqa: E402
from rules import compile_sources  # noqa: E402
from schemas import Topics  # noqa: E402
from streams.case_state import CaseState  # noqa: E402
from streams.casework import fire_clocks  # noqa: E402
from streams.clock import WallClock  # noqa: E402
from streams.deadlines import DeadlineIndex  # noqa: E402
from streams.output import ReliableWriter  # noqa: E402
from streams.pipeline import Pipeline  # noqa: E402
from streams.rebalance import (  # noqa: E402
    assign_partitions,
    case_store,
    customer_store,
    rebuild_deadlines,
)
from streams.state_store import ChangelogState  # noqa: E402
from streams.timer import SlaTimer  # noqa: E402
from streams.worker_config import RuleSetHolder, WorkerConfig  # noqa: E402
from tests.kafka_support import create_topics  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
CONNECTION = {"bootstrap.servers": BOOTSTRAP}
PARTITIONS = 4
TICK_SECONDS = 0.2  # the worker's default longest timer sleep (WorkerConfig.sla_tick_seconds)
STAGE_C_WINDOW_SECONDS = 0.010  # the worker's batch window (take_events within 10 ms)
BURST_LEAD_SECONDS = 120  # burst cases open this long before their breach (warning halfway)
RULES = f"""
version: 1
calendars: {{always: 24x7}}
sla:
  standard:
    calendar: always
    targets: {{normal: {{first_response: 8h, resolution: 5d}}}}
    warn_at: 75%
  burst:
    calendar: always
    targets: {{normal: {{first_response: {BURST_LEAD_SECONDS}s}}}}
    warn_at: 50%
escalations:
  standard: [{{on: breach, queue: tier2, priority: +1}}]
queues: {{general: {{}}, tier2: {{}}}}
routes:
  queue: general
  priority: normal
  sla: standard
  escalation: standard
  routes:
    - {{name: burst, when: {{metadata.burst: true}}, sla: burst}}
"""


RULESET = compile_sources({"bench.yaml": RULES})


def rss_mib() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started (VmHWM).

    Not `getrusage`'s ru_maxrss: Linux keeps that across exec, so a child started by a
    bigger parent would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def template(at: datetime, burst: bool) -> tuple[str, str, datetime]:
    """A freshly opened case's state JSON, its case id, and its next deadline."""
    return case_template(RULESET, at, {"burst": burst})


def hold(
    store: ChangelogState,
    deadlines: DeadlineIndex,
    cases: Iterable[tuple[bytes, bytes]],
    deadline: datetime,
) -> None:
    """Hold the cases as stage C does after a restore, and index their deadline."""
    for number, (key, value) in enumerate(cases):
        store.hold(number % PARTITIONS, [(key, value)])
        deadlines.schedule(number % PARTITIONS, key, deadline)


def produce_floor(topic: str, values: list[bytes]) -> float:
    """Seconds for a bare producer to write these records (acks=all) with one flush."""
    producer = Producer({**PRODUCER_DEFAULTS, **CONNECTION})
    started = time.perf_counter()
    for number, value in enumerate(values):
        producer.produce(topic, value=value, key=str(number).encode())
    producer.flush(60)
    return time.perf_counter() - started


class MeasuredPipeline(Pipeline):
    """The worker's pipeline, noting when each fired breach's events were acknowledged."""

    latencies: list[float]
    breach_at: datetime | None = None
    records = 0

    async def _fired(self, outputs, due):  # type: ignore[no-untyped-def]
        if any(deadline == self.breach_at for _p, _k, deadline in due):
            self.records += len(outputs) + len(due)  # and one state record per case
        await super()._fired(outputs, due)

    def _fired_out(self, due: Sequence[tuple[int, bytes, datetime]]) -> None:
        super()._fired_out(due)
        written = self.clock.now()
        breaches = [deadline for _p, _k, deadline in due if deadline == self.breach_at]
        self.latencies.extend((written - deadline).total_seconds() for deadline in breaches)


class _Unused:
    async def publish(self, records: object) -> None:
        raise AssertionError("nothing is due: nothing may be written")


async def burst_written(pipeline: MeasuredPipeline, count: int) -> None:
    """Wait until the burst's `count` breaches are acknowledged and its states written."""
    while len(pipeline.latencies) < count:
        await asyncio.sleep(0.05)
    while pipeline.case_lock.locked():  # the burst's states are written after its events
        await asyncio.sleep(0.05)


async def idle_step(store: ChangelogState, deadlines: DeadlineIndex, topics: Topics) -> float:
    """Microseconds of one timer step (fire, then prepare) when nothing is due soon."""
    config = WorkerConfig(broker_url=f"kafka://{BOOTSTRAP}", topics=topics, connection=CONNECTION)
    pipeline = Pipeline(
        config, RuleSetHolder(RULESET), ReliableWriter(_Unused()), store, store, deadlines
    )
    timer = SlaTimer(
        pipeline.fire_due,
        deadlines.next_deadline,
        WallClock(),
        TICK_SECONDS,
        prepare=pipeline.prepare_upcoming,
    )
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        await timer.step()
    return (time.perf_counter() - started) / rounds * 1e6


async def burst(
    topics: Topics,
    store: ChangelogState,
    deadlines: DeadlineIndex,
    count: int,
    prepare_seconds: float,
    tag: str,
) -> tuple[list[float], int, float, int]:
    """`count` more held cases fall due in the same second; the worker's timer fires them."""
    config = WorkerConfig(
        broker_url=f"kafka://{BOOTSTRAP}",
        topics=topics,
        connection=CONNECTION,
        sla_prepare_seconds=prepare_seconds,
    )
    publisher = KafkaPublisher(CONNECTION, delivery_timeout_seconds=60)
    pipeline = MeasuredPipeline(
        config, RuleSetHolder(RULESET), ReliableWriter(publisher), store, store, deadlines
    )
    pipeline.latencies = []
    opened = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    text, case_id, warn_at = template(opened, burst=True)
    pipeline.breach_at = opened + timedelta(seconds=BURST_LEAD_SECONDS)
    hold(store, deadlines, distinct_cases(text, case_id, count, tag), warn_at)
    timer = SlaTimer(
        pipeline.fire_due,
        deadlines.next_deadline,
        WallClock(),
        TICK_SECONDS,
        prepare=pipeline.prepare_upcoming,
        lateness_seconds=config.sla_lateness_seconds,
    )
    running = asyncio.create_task(timer.run())
    waits: list[float] = []
    probing = asyncio.create_task(stage_c_probe(pipeline, waits))
    await burst_written(pipeline, count)
    running.cancel()
    probing.cancel()
    publisher.close()
    sample = [value for _key, value in distinct_cases(text, case_id, 1000, tag)]
    floor = produce_floor(topics.case_events, sample * (pipeline.records // len(sample) + 1))
    return sorted(pipeline.latencies), pipeline.records, floor, pipeline.prepared.used, waits


async def stage_c_probe(pipeline: MeasuredPipeline, waits: list[float]) -> None:
    """Stage C's batches, as far as the case lock goes: one every batch window (10 ms),
    each noting how long it waited for the lock (the timer holds it while it fires)."""
    while True:
        await asyncio.sleep(STAGE_C_WINDOW_SECONDS)
        asked, due = time.perf_counter(), pipeline.breach_at
        in_burst = due is not None and datetime.now(UTC) >= due
        async with pipeline.case_lock:
            if in_burst:
                waits.append(time.perf_counter() - asked)


def report_burst(name: str, result: tuple[list[float], int, float, int, list[float]]) -> None:
    latencies, records, floor, used, waits = result
    waits.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"   {name}: breach latency p50 {statistics.median(latencies):.2f}s, p99 {p99:.2f}s, "
        f"max {latencies[-1]:.2f}s ({records:,} event, queue and state records); floor: a "
        f"bare producer writes as many records of a case's size (acks=all, one flush) in "
        f"{floor:.2f}s; {used:,} firings (warnings and breaches) were ready; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"      a stage C batch every {STAGE_C_WINDOW_SECONDS * 1000:.0f} ms waited for the "
        f"case lock during the burst: p50 {statistics.median(waits) * 1000:.1f} ms, p99 "
        f"{waits[int(len(waits) * 0.99) - 1] * 1000:.1f} ms, max {waits[-1] * 1000:.1f} ms "
        f"({len(waits)} batches, {sum(w > 0.020 for w in waits)} over 20 ms; target: none)"
    )


def write_changelog(topic: str, cases: Iterable[tuple[bytes, bytes]], deadline: datetime) -> None:
    """Write states as the worker does: JSON value, next deadline in a header."""
    seed_changelog(CONNECTION, topic, cases, deadline, PARTITIONS)


def consume_floor(topic: str) -> tuple[float, int]:
    """Seconds for a bare consumer to read the whole topic, and the records read."""
    consumer = Consumer({**CONNECTION, "group.id": f"{topic}.floor", "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    started, count, ended = time.perf_counter(), 0, 0
    while ended < PARTITIONS:
        for message in consumer.consume(10_000, 1.0):
            if message.error() is None:
                count += 1
            else:
                ended += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed, count


RESTART_GROUPS_FROM = timedelta(hours=1)  # the first after-restart burst's breach, from now
RESTART_GROUPS_APART = timedelta(minutes=10)  # well beyond the minute prepared ahead


def warned_template(breach_at: datetime) -> tuple[str, str]:
    """A burst case whose warning has fired: its state JSON (next deadline: the breach)."""
    text, case_id, warn_at = template(breach_at - timedelta(seconds=BURST_LEAD_SECONDS), True)
    update = fire_clocks(CaseState.model_validate_json(text), RULESET, warn_at)
    assert update.state.next_deadline == breach_at, update.state.next_deadline
    return update.state.model_dump_json(), case_id


class ShiftedClock(WallClock):
    """The wall clock moved by `shift`: a burst scheduled ahead falls due when wanted."""

    shift = timedelta(0)

    def now(self) -> datetime:
        """The wall clock plus the shift."""
        return datetime.now(UTC) + self.shift


class Assigned(NamedTuple):
    """A topic partition as faust hands it to `on_partitions_assigned`."""

    topic: str
    partition: int


async def restarted(prefix: str, breach_at: datetime, after: float, count: int) -> dict[str, float]:
    """A restarted worker: assignment with the timer running, burst due `after` s after ready."""
    importlib.import_module("streams.app")  # the worker's modules, faust included
    tune_collector()  # as `escalator worker` does once started

    topics = Topics(prefix)
    config = WorkerConfig(broker_url=f"kafka://{BOOTSTRAP}", topics=topics, connection=CONNECTION)
    clock = ShiftedClock()
    publisher = KafkaPublisher(CONNECTION, delivery_timeout_seconds=60)
    deadlines = DeadlineIndex()
    pipeline = MeasuredPipeline(
        config,
        RuleSetHolder(RULESET),
        ReliableWriter(publisher),
        customer_store(config),
        case_store(config),
        deadlines,
        clock=clock,
    )
    pipeline.latencies, pipeline.breach_at = [], breach_at
    timer = SlaTimer(
        pipeline.fire_due,
        deadlines.next_deadline,
        clock,
        TICK_SECONDS,
        prepare=pipeline.prepare_upcoming,
        lateness_seconds=config.sla_lateness_seconds,
    )
    before = rss_mib()
    running = asyncio.create_task(timer.run())
    started = time.perf_counter()
    assigned = [
        Assigned(t, p) for t in (topics.threaded, topics.resolved) for p in range(PARTITIONS)
    ]
    await assign_partitions(pipeline, config, assigned)
    ready = time.perf_counter() - started
    clock.shift = breach_at - timedelta(seconds=after) - datetime.now(UTC)
    ready_rss, ready_peak = rss_mib(), peak_rss_mib()
    await burst_written(pipeline, count)
    running.cancel()
    publisher.close()
    latencies = sorted(pipeline.latencies)
    return {
        "after": after,
        "restored": len(pipeline.cases),
        "deadlines": len(deadlines),
        "ready_seconds": ready,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "max": latencies[-1],
        "used": pipeline.prepared.used,
        "rss_before_mib": before,
        "rss_ready_mib": ready_rss,
        "peak_ready_mib": ready_peak,
        "peak_rss_mib": peak_rss_mib(),
        "load_average": os.getloadavg()[0],
    }


def restart_bursts(
    topics: Topics, cases: int, count: int, after_ready: Sequence[float], first: datetime
) -> None:
    """Step 5: one restarted process per delay, each firing its own burst."""
    print(
        f"5. right after a restart ({cases:,} cases restored, {count:,} breaches due in one "
        "second, D seconds after the restarted worker is ready; target p99 <= 1s):"
    )
    for number, after in enumerate(after_ready):
        breach_at = first + number * RESTART_GROUPS_APART
        command = [sys.executable, __file__, "--restarted", topics.prefix]
        command += ["--breach-at", breach_at.isoformat(), "--after", str(after)]
        command += ["--burst", str(count)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.splitlines()[-1])
        print(
            f"   D = {after:g}s: breach latency p50 {result['p50']:.2f}s, p99 "
            f"{result['p99']:.2f}s, max {result['max']:.2f}s; {result['used']:,} firings were "
            f"ready; ready {result['ready_seconds']:.1f}s after the assignment began "
            f"({result['restored']:,} states, {result['deadlines']:,} deadlines); resident "
            f"{result['rss_before_mib']:,.0f} MiB before the restore, "
            f"{result['rss_ready_mib']:,.0f} MiB ready (peak until then "
            f"{result['peak_ready_mib']:,.0f} MiB), peak {result['peak_rss_mib']:,.0f} MiB; "
            f"load average {result['load_average']:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument(
        "--after-ready",
        default="0,1,2,5,10",
        help="seconds between a restarted worker's readiness and its burst (step 5), commas",
    )
    parser.add_argument(
        "--steps", default="1-5", help="1-5 (all) or 1-3 (skip the restart steps 4 and 5)"
    )
    parser.add_argument("--restarted", help=argparse.SUPPRESS)  # step 5's child: topic prefix
    parser.add_argument("--breach-at", help=argparse.SUPPRESS)
    parser.add_argument("--after", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restarted:
        breach_at = datetime.fromisoformat(args.breach_at)
        result = asyncio.run(restarted(args.restarted, breach_at, args.after, args.burst))
        print(json.dumps(result))
        return
    after_ready = [float(value) for value in args.after_ready.split(",") if value]
    topics = Topics(f"benchsla{uuid.uuid4().hex[:6]}.")
    create_topics(
        BOOTSTRAP,
        [topics.case_events, topics.queue("general"), topics.queue("tier2")],
        partitions=PARTITIONS,
    )
    changelog = topics.state_changelog("cases")
    create_topics(
        BOOTSTRAP,
        [changelog, topics.state_changelog("customers")],
        partitions=PARTITIONS,
        config={"cleanup.policy": "compact"},
    )
    create_topics(BOOTSTRAP, [topics.threaded, topics.resolved], partitions=PARTITIONS)
    config = WorkerConfig(broker_url=f"kafka://{BOOTSTRAP}", topics=topics, connection=CONNECTION)
    text, case_id, next_deadline = template(datetime.now(UTC), burst=False)
    print(f"one case: {len(text):,} bytes of JSON")

    before = rss_mib()
    started = time.perf_counter()
    store = case_store(config)
    deadlines = DeadlineIndex()
    hold(store, deadlines, distinct_cases(text, case_id, args.cases, "M"), next_deadline)
    built = time.perf_counter() - started
    tune_collector()  # as the worker does after a restore: what it holds is frozen
    held_rss = rss_mib()
    per_case = (held_rss - before) * 2**20 / args.cases
    print(
        f"1. {args.cases:,} open cases held: process {held_rss:,.0f} MiB resident, "
        f"{held_rss - before:,.0f} MiB over the {before:,.0f} MiB before "
        f"({per_case:,.0f} bytes/case), built in {built:.1f}s"
    )

    tick_us = asyncio.run(idle_step(store, deadlines, topics))
    print(f"2. idle timer step with {len(deadlines):,} deadlines indexed: {tick_us:.2f} µs")

    print(f"3. {args.burst:,} deadlines in one second (target p99 <= 1s):")
    cold = asyncio.run(burst(topics, store, deadlines, args.burst, 0.0, "C"))
    report_burst("computed at the deadline (nothing prepared)", cold)
    warm = asyncio.run(burst(topics, store, deadlines, args.burst, 60.0, "W"))
    report_burst("prepared ahead (the worker's default)", warm)
    del store, deadlines
    if args.steps == "1-3":
        return

    write_changelog(changelog, distinct_cases(text, case_id, args.cases, "R"), next_deadline)
    first_group = datetime.now(UTC).replace(microsecond=0) + RESTART_GROUPS_FROM
    for number in range(len(after_ready)):
        breach_at = first_group + number * RESTART_GROUPS_APART
        warned, warned_id = warned_template(breach_at)
        group = distinct_cases(warned, warned_id, args.burst, f"G{number}")
        write_changelog(changelog, group, breach_at)
    groups = len(after_ready) * args.burst
    floor_seconds, floor_count = consume_floor(changelog)
    store = case_store(config)
    started = time.perf_counter()
    restored = store.assign(range(PARTITIONS))
    restore_seconds = time.perf_counter() - started
    deadlines = DeadlineIndex()
    rebuild_deadlines(deadlines, store.partitions, restored)
    ready_seconds = time.perf_counter() - started
    # the changelog also holds the burst cases, written twice (warning, breach) by the timer
    assert len(store) == args.cases + 2 * args.burst + groups, len(store)
    assert floor_count == args.cases + 4 * args.burst + groups, floor_count
    assert len(deadlines) == args.cases + groups, len(deadlines)  # the bursts of 3 are done
    print(
        f"4. restart: {len(store):,} states restored from Kafka in {restore_seconds:.1f}s, "
        f"ready with {len(deadlines):,} deadlines indexed in {ready_seconds:.1f}s (target <= "
        f"60s); floor: a bare consumer reads the {floor_count:,} records in {floor_seconds:.1f}s"
    )
    del store, deadlines, restored
    restart_bursts(topics, args.cases, args.burst, after_ready, first_group)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        "peak RSS of this process (steps 1-4) "
        f"{peak_rss_mib():,.0f} MiB"
    )


if __name__ == "__main__":
    main()
