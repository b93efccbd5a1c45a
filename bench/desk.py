"""Desk benchmarks: the case store projection's throughput, and the desk API's latencies.

Each section is one function taking the parsed arguments and returning the Markdown table
rows it measured; `main` runs the sections asked for (all by default) and prints them.

- `projection`: the same `cases.events` topic (realistic conversations: `case.opened`,
  `message.appended` and `case.routed` per message) is projected with the real
  `Projection` into SQLite and into PostgreSQL, then projected again (every event a
  duplicate). Baseline in the same run: consuming the topic without a database.
- `api`: p50/p99 of claim and reply through the desk API: a real worker, projection and
  `escalator desk` on the broker, each write answered only once the stream's verdict is in
  the store. Baseline in the same run: reading the same case (`GET /v1/cases/ID`).

Run it with `make bench` or `python bench/desk.py [--only projection]`. PostgreSQL comes
from `ESCALATOR_TEST_DATABASE_URL` or `deploy/postgres/postgres.sh ensure`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from queues import Projection, make_engine, make_session_factory, upgrade  # noqa: E402
from schemas import CaseEvent, Topics  # noqa: E402
from tests import postgres_support  # noqa: E402
from tests.desk.stack import desk_stack  # noqa: E402
from tests.kafka_support import create_topics  # noqa: E402
from tests.queues.case_event_builders import conversation, to_bytes  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
PARTITIONS = 4


# --- projection throughput ---------------------------------------------------------------


@dataclass
class ProjectionRun:
    target: str
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


def projection_events(cases: int, messages_per_case: int) -> list[CaseEvent]:
    events: list[CaseEvent] = []
    for number in range(cases):
        events.extend(conversation(f"bench-{number}", messages=messages_per_case))
    return events


def publish(topic: str, events: list[CaseEvent]) -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5, "partitioner": "murmur2"})
    for event in events:
        producer.produce(topic, key=event.case_id.encode(), value=to_bytes(event))
        producer.poll(0)
    producer.flush(60)


def consume_only(topic: str, expected: int) -> ProjectionRun:
    """The baseline: read every record of the topic with no database at all.

    Timed like `project`: from before the group join to the last record.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"bench-consume-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    started = time.perf_counter()
    consumer.subscribe([topic])
    read = 0
    try:
        while read < expected:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(error)
                if error is None:
                    read += 1
        return ProjectionRun("consume only (no database)", read, time.perf_counter() - started)
    finally:
        consumer.close()


def project(target: str, topic: str, database_url: str, batch_size: int) -> ProjectionRun:
    """Project the topic from the start with a fresh group; time the catch-up."""
    engine = make_engine(database_url)
    try:
        with Projection(
            kafka_config={"bootstrap.servers": BOOTSTRAP},
            topic=topic,
            session_factory=make_session_factory(engine),
            group_id=f"bench-projection-{uuid.uuid4().hex[:8]}",
            batch_size=batch_size,
        ) as projection:
            started = time.perf_counter()
            read = projection.catch_up(timeout_seconds=600)
            return ProjectionRun(target, read, time.perf_counter() - started)
    finally:
        engine.dispose()


def bench_projection(args: argparse.Namespace) -> list[str]:
    events = projection_events(args.cases, args.messages_per_case)
    topic = Topics(f"bench{uuid.uuid4().hex[:8]}.").case_events
    create_topics(BOOTSTRAP, [topic], partitions=PARTITIONS)
    publish(topic, events)
    print(f"projection: {len(events):,} events of {args.cases:,} cases on {topic}", flush=True)

    server = postgres_support.server_url()
    postgres_db = postgres_support.create_database(server)
    postgres_url = postgres_db.render_as_string(hide_password=False)
    runs = [consume_only(topic, len(events))]
    try:
        with tempfile.TemporaryDirectory() as folder:
            databases = {
                "SQLite (file, WAL)": f"sqlite:///{folder}/cases.db",
                "PostgreSQL 15 (local, fsync off)": postgres_url,
            }
            for name, url in databases.items():
                upgrade(url)
                runs.append(project(f"{name}: first pass", topic, url, args.batch_size))
                runs.append(project(f"{name}: replay, all duplicates", topic, url, args.batch_size))
    finally:
        postgres_support.drop_database(server, postgres_db)

    baseline = runs[0].per_second
    rows = []
    for run in runs:
        print(f"  {run.target}: {run.per_second:,.0f} events/s ({run.seconds:.1f} s)", flush=True)
        rows.append(
            f"| {run.target} | {run.events:,} | {run.seconds:.2f} | {run.per_second:,.0f} "
            f"| {run.per_second / baseline:.2f}x |"
        )
    return [
        f"Projection, batch size {args.batch_size}, {PARTITIONS} partitions",
        "",
        "| target | events | seconds | events/s | vs consume only |",
        "|---|---:|---:|---:|---:|",
        *rows,
    ]


# --- desk API latencies ------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `samples` (seconds)."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def bench_api(args: argparse.Namespace) -> list[str]:
    timings: dict[str, list[float]] = {"read (baseline)": [], "claim": [], "reply": []}
    with (
        tempfile.TemporaryDirectory() as folder,
        desk_stack(BOOTSTRAP, Path(folder), assigner=False) as desk,
    ):
        desk.add("bench", "general")
        customers = desk.send([f"bench-{n}@example.com" for n in range(args.api_cases)])
        cases = desk.wait_for_cases(customers, "bench", timeout=300)
        print(f"api: {len(cases)} cases in the store", flush=True)
        for case in cases.values():
            case_id = case["case_id"]
            for name, method, path, body in (
                ("read (baseline)", "GET", f"/v1/cases/{case_id}", None),
                ("claim", "POST", f"/v1/cases/{case_id}/claim", None),
                ("reply", "POST", f"/v1/cases/{case_id}/reply", {"text": "On it."}),
            ):
                started = time.perf_counter()
                answer = desk.call(method, path, "bench", json=body)
                timings[name].append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(f"{name} {case_id}: {answer.status_code} {answer.text}")
    baseline = percentile(timings["read (baseline)"], 0.5)
    rows = []
    for name, samples in timings.items():
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        print(f"  {name}: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms", flush=True)
        rows.append(
            f"| {name} | {len(samples)} | {p50 * 1000:.0f} | {p99 * 1000:.0f} "
            f"| {p50 / baseline:.1f}x |"
        )
    return [
        "Desk API, one agent, requests one after another (worker, projection, desk processes)",
        "",
        "| request | n | p50 ms | p99 ms | p50 vs read |",
        "|---|---:|---:|---:|---:|",
        *rows,
    ]


# --- sections ----------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[argparse.Namespace], list[str]]] = {
    "projection": bench_projection,
    "api": bench_api,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--cases", type=int, default=3_000, help="projection: cases")
    parser.add_argument("--messages-per-case", type=int, default=3, help="projection")
    parser.add_argument("--batch-size", type=int, default=500, help="projection batch size")
    parser.add_argument("--api-cases", type=int, default=200, help="api: cases claimed and replied")
    args = parser.parse_args()
    tables: list[str] = []
    for name in args.only or list(SECTIONS):
        tables.extend([*SECTIONS[name](args), ""])
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, broker {BOOTSTRAP}"
    )
    print()
    print("\n".join(tables))


if __name__ == "__main__":
    main()
