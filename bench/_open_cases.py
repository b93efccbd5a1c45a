"""Open cases a worker already holds when a benchmark starts: its cases changelog, seeded.

A worker started on a seeded changelog restores the cases and indexes their deadlines, so
its SLA timer runs with them. Used by `bench/pipeline.py` (latency with the timer active on
100,000 open cases) and `bench/sla_timers.py` (the restart steps).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from confluent_kafka import Producer

from connectors.publisher import PRODUCER_DEFAULTS
from rules import CompiledRuleSet
from schemas import InboundMessage
from schemas.ids import case_id_for
from streams.casework import apply_message
from streams.records import ThreadedMessage
from streams.state_store import DEADLINE_HEADER


def case_template(
    ruleset: CompiledRuleSet, at: datetime, metadata: dict[str, Any] | None = None
) -> tuple[str, str, datetime]:
    """A case opened at `at` under `ruleset`: its state JSON, case id and next deadline."""
    message = InboundMessage(
        channel="email",
        external_id="t-1",
        sender="ana@example.com",
        sent_at=at,
        text="I was charged twice for order A-1234, please refund one of them.",
        subject="Charged twice",
        metadata=metadata or {},
    )
    threaded = ThreadedMessage(
        case_id=case_id_for("cus", "t-1"),
        customer_id="cus",
        opens_case=True,
        evidence="bench",
        message=message,
        ingested_at=at,
    )
    state = apply_message(None, threaded, ruleset).state
    assert state.next_deadline is not None, "the template case has no SLA deadline"
    return state.model_dump_json(), state.case_id, state.next_deadline


def distinct_cases(text: str, case_id: str, count: int, tag: str) -> Iterator[tuple[bytes, bytes]]:
    """`count` distinct cases from one template: (key, JSON) with their own ids."""
    for number in range(count):
        own = f"C-{tag}{number:08d}"
        value = text.replace(case_id, own).replace('"cus"', f'"cus-{tag}{number}"')
        yield own.encode(), value.encode()


def write_changelog(
    connection: dict[str, str],
    topic: str,
    cases: Iterable[tuple[bytes, bytes]],
    deadline: datetime,
    partitions: int,
) -> None:
    """Write states as the worker does: JSON value, next deadline in a header."""
    header = [(DEADLINE_HEADER, deadline.isoformat().replace("+00:00", "Z").encode())]
    producer = Producer({**PRODUCER_DEFAULTS, **connection, "linger.ms": 20})
    for number, (key, value) in enumerate(cases):
        while True:
            try:
                producer.produce(
                    topic, key=key, value=value, headers=header, partition=number % partitions
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0, "the seeded changelog was not all written"
