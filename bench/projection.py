"""Projection benchmark: the case store projection against consuming the same events, one run.

One `cases.events` topic is filled with realistic case histories: per case `case.opened`,
then per customer message `message.appended` and `case.routed`, an SLA event the store
records without applying (`sla.started`), an agent's claim (`case.updated` with an
assignee: an assignment starts) and a reply (`message.appended`, outbound). Then, each in
this process and in turn:

- **consume only** (the baseline): a confluent-kafka consumer with the projection's own
  settings reads every record in batches, touching each value, and writes nothing;
- **SQLite** and **PostgreSQL**: the real `Projection` catches up from the start into a
  fresh store (first pass), then again with a new group (replay: every event a duplicate).

Each is timed from its group join to its last record, and the CPU time of this process
is taken around it too (the broker and PostgreSQL run elsewhere). The target
(issue 13) is 20,000 events/s or 0.2x the consume-only rate, whichever is lower.

    .venv/bin/python bench/projection.py [--cases 3000] [--messages 3] [--batch-size 500]

prints a human summary and, as its last line, one JSON object with every figure of the
run. PostgreSQL comes from `ESCALATOR_TEST_DATABASE_URL` or `deploy/postgres/postgres.sh`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from metricsio.gc_tuning import tune_collector  # noqa: E402
from queues import Outcome, Projection, make_engine, make_session_factory, upgrade  # noqa: E402
from schemas import CaseEvent, Topics  # noqa: E402
from schemas.ids import event_id_for  # noqa: E402
from tests import postgres_support  # noqa: E402
from tests.kafka_support import create_topics  # noqa: E402
from tests.queues.case_event_builders import (  # noqa: E402
    appended,
    opened,
    other,
    routed,
    to_bytes,
)

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
PARTITIONS = 4
TARGET_EVENTS_PER_S = 20_000
TARGET_RATIO = 0.2


def case_history(customer: str, messages: int) -> list[CaseEvent]:
    """One case's events, in the order the worker writes them."""
    events = [opened(customer)]
    last = events[0].at
    for number in range(1, messages + 1):
        message = appended(customer, number)
        events += [message, routed(customer, at=message.at, routing=str(number))]
        last = message.at
    events.append(other(customer, "sla.started", at=last))
    claim = routed(customer, at=last + timedelta(minutes=5), routing="claim")
    claim.payload["case"]["assignee"] = "agent-1"
    events.append(
        claim.model_copy(
            update={
                "type": "case.updated",
                "event_id": event_id_for(claim.case_id, "case.updated", "claim"),
                "reason": "claimed by agent-1",
            }
        )
    )
    reply = appended(customer, messages + 1, at=last + timedelta(minutes=9), text="On it.")
    reply.payload["message"]["direction"] = "outbound"
    events.append(reply)
    return events


def workload(cases: int, messages: int) -> list[CaseEvent]:
    """`cases` case histories of `messages` customer messages each."""
    events: list[CaseEvent] = []
    for number in range(cases):
        events.extend(case_history(f"bench-{number}", messages))
    return events


def publish(topic: str, events: list[CaseEvent]) -> None:
    """Write the events keyed by case, as the worker does."""
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5, "partitioner": "murmur2"})
    for event in events:
        producer.produce(topic, key=event.case_id.encode(), value=to_bytes(event))
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("the benchmark's events were not all written")


@dataclass
class Run:
    """One timed pass over the topic."""

    name: str
    events: int
    seconds: float
    cpu_seconds: float
    outcomes: dict[str, int]

    @property
    def per_second(self) -> float:
        """Events per wall-clock second."""
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        """This process's CPU time per event, in microseconds."""
        return self.cpu_seconds / self.events * 1e6


@contextmanager
def timer() -> Iterator[Callable[[], tuple[float, float]]]:
    """Yield a function giving (wall, cpu) seconds since the block began."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield lambda: (time.perf_counter() - wall, time.process_time() - cpu)


def consume_only(topic: str, expected: int, batch_size: int) -> Run:
    """The baseline: read every record as the projection's consumer does, store nothing."""
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"bench-consume-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    read = 0
    with timer() as elapsed:
        consumer.subscribe([topic])
        try:
            while read < expected:
                for message in consumer.consume(num_messages=batch_size, timeout=1.0):
                    error = message.error()
                    if error is not None and error.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(error)
                    if error is None and message.value() is not None:
                        read += 1
        finally:
            consumer.close()
        wall, cpu = elapsed()
    return Run("consume only", read, wall, cpu, {})


def project(name: str, topic: str, database_url: str, batch_size: int) -> Run:
    """Catch the real projection up on the whole topic with a fresh group."""
    engine = make_engine(database_url)
    try:
        with Projection(
            kafka_config={"bootstrap.servers": BOOTSTRAP},
            topic=topic,
            session_factory=make_session_factory(engine),
            group_id=f"bench-projection-{uuid.uuid4().hex[:8]}",
            batch_size=batch_size,
        ) as projection:
            with timer() as elapsed:
                read = projection.catch_up(timeout_seconds=1800)
                wall, cpu = elapsed()
            outcomes = {outcome.value: n for outcome, n in projection.totals.outcomes.items()}
    finally:
        engine.dispose()
    return Run(name, read, wall, cpu, outcomes)


def main() -> None:
    """Run the benchmark and print its summary and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=3_000)
    parser.add_argument("--messages", type=int, default=3, help="customer messages per case")
    parser.add_argument("--batch-size", type=int, default=500, help="records per transaction")
    args = parser.parse_args()

    events = workload(args.cases, args.messages)
    topic = Topics(f"bench{uuid.uuid4().hex[:8]}.").case_events
    create_topics(BOOTSTRAP, [topic], partitions=PARTITIONS)
    publish(topic, events)
    print(f"{len(events):,} events of {args.cases:,} cases on {topic}", flush=True)

    tune_collector()  # as `escalator projection` and `escalator db rebuild` do
    load_before = os.getloadavg()[0]
    runs = {"consume_only": consume_only(topic, len(events), args.batch_size)}
    server = postgres_support.server_url()
    postgres = postgres_support.create_database(server)
    try:
        with tempfile.TemporaryDirectory() as folder:
            urls = {
                "sqlite": f"sqlite:///{folder}/cases.db",
                "postgresql": postgres.render_as_string(hide_password=False),
            }
            for dialect, url in urls.items():
                upgrade(url)
                runs[dialect] = project(dialect, topic, url, args.batch_size)
                runs[f"{dialect}_replay"] = project(
                    f"{dialect} replay", topic, url, args.batch_size
                )
    finally:
        postgres_support.drop_database(server, postgres)

    for key, run in runs.items():
        if run.events != len(events):
            raise RuntimeError(f"{run.name} read {run.events} of {len(events)} events")
        if key in ("sqlite", "postgresql") and run.outcomes != {
            Outcome.APPLIED.value: len(events) - args.cases,
            Outcome.RECORDED.value: args.cases,
        }:
            raise RuntimeError(f"{run.name}: unexpected outcomes {run.outcomes}")

    baseline = runs["consume_only"].per_second
    target = min(TARGET_EVENTS_PER_S, TARGET_RATIO * baseline)
    result: dict[str, Any] = {
        "events": len(events),
        "cases": args.cases,
        "batch_size": args.batch_size,
        "partitions": PARTITIONS,
        "target_events_per_s": round(target),
        "load_average": round(max(load_before, os.getloadavg()[0]), 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    for key, run in runs.items():
        result[f"{key}_events_per_s"] = round(run.per_second)
        result[f"{key}_cpu_us_per_event"] = round(run.cpu_us_per_event, 1)
        if key != "consume_only":
            result[f"{key}_vs_consume_only"] = round(run.per_second / baseline, 3)
        print(
            f"  {run.name}: {run.per_second:,.0f} events/s ({run.seconds:.2f} s, "
            f"{run.cpu_us_per_event:.1f} us CPU/event here)",
            flush=True,
        )
    for dialect in ("sqlite", "postgresql"):
        result[f"{dialect}_meets_target"] = runs[dialect].per_second >= target
    print(json.dumps(result))


if __name__ == "__main__":
    main()
