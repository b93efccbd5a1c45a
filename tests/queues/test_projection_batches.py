"""How a batch is applied does not change what the store holds: folding, crashes, replays.

The projection folds all of a case's events in a batch into one row and writes each
table with one bulk statement. These tests hold it to the one-event-at-a-time meaning,
on SQLite and on PostgreSQL: any split of the same events into batches gives the same
rows, and a crash in the middle of writing a batch, followed by a replay of everything
from the start (as after a restart before any offset was committed), ends with exactly
the store of one clean pass.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.orm import Session, sessionmaker

from queues import (
    BatchWriter,
    Outcome,
    ProjectionMetrics,
    SourceRecord,
    make_engine,
    make_session_factory,
)
from queues.models import CaseEventRow, QueueRow
from queues.rebuild import PROJECTED_ROWS
from schemas import CaseEvent, CaseRoutedPayload
from schemas.ids import event_id_for
from tests.queues.case_event_builders import (
    T0,
    appended,
    case_id,
    opened,
    other,
    routed,
    snapshot,
    to_bytes,
)


def owned(customer: str, minute: int, assignee: str | None, pending: bool, why: str) -> CaseEvent:
    """A `case.updated` snapshot of the customer's case with this owner."""
    base = routed(customer, at=T0 + timedelta(minutes=minute), routing=f"owner-{minute}")
    payload = CaseRoutedPayload.model_validate(base.payload)
    payload.case.assignee = assignee
    payload.case.assignment_pending = pending
    payload.case.tags = [f"minute-{minute}"]
    return CaseEvent(
        event_id=event_id_for(case_id(customer), "case.updated", str(minute)),
        case_id=case_id(customer),
        type="case.updated",
        at=T0 + timedelta(minutes=minute),
        reason=why,
        payload=payload.model_dump(mode="json"),
    )


def case_life(customer: str, queue: str) -> list[CaseEvent]:
    """One case from its first message to a second owner, with every kind of event."""
    first = appended(customer, 1)
    reply = appended(customer, 2, at=T0 + timedelta(minutes=6), text="Looking into it.")
    reply.payload["message"]["direction"] = "outbound"
    broken = routed(customer, routing="broken").model_copy(
        update={"payload": {"case": {"queue": queue}}}
    )
    return [
        first,  # before `case.opened`: the case is built bare first
        opened(customer),
        routed(customer, queue=queue, at=first.at),
        other(customer, "sla.started", at=first.at),
        owned(customer, 1, "bo", True, "assigned to bo"),
        owned(customer, 2, "bo", False, "accepted by bo"),
        broken,  # recorded, not applied
        appended(customer, 3, channel="sms", text="Any news?"),
        owned(customer, 3, None, False, "released by bo"),
        first,  # redelivered inside the batch
        owned(customer, 4, "cy", False, "claimed by cy"),
        reply,
        routed(customer, queue="tier2", at=T0 + timedelta(minutes=7), routing="escalated"),
    ]


def interleaved(customers: int) -> list[CaseEvent]:
    """Several cases' lives, their events interleaved as on one partition."""
    lives = [case_life(f"cust-{n}", "billing" if n % 2 else "general") for n in range(customers)]
    events: list[CaseEvent] = []
    for step in range(max(len(life) for life in lives)):
        events.extend(life[step] for life in lives if step < len(life))
    return events


def records(events: Sequence[CaseEvent]) -> list[SourceRecord]:
    """The events as records of partition 0, from offset 0."""
    return [
        SourceRecord(value=to_bytes(event), partition=0, offset=offset)
        for offset, event in enumerate(events)
    ]


def in_batches(items: Sequence[SourceRecord], sizes: Sequence[int]) -> Iterator[list[SourceRecord]]:
    """`items` cut into consecutive batches of the given sizes (the last takes the rest)."""
    start = 0
    for size in sizes:
        if start >= len(items):
            return
        yield list(items[start : start + size])
        start += size
    if start < len(items):
        yield list(items[start:])


def write_all(
    factory: sessionmaker[Session], batches: Iterator[list[SourceRecord]]
) -> dict[Outcome, int]:
    """Write each batch as the projection does; the outcomes of them all."""
    writer = BatchWriter(factory, ProjectionMetrics(CollectorRegistry()))
    totals: dict[Outcome, int] = {}
    for batch in batches:
        for outcome, count in writer.write(batch).outcomes.items():
            totals[outcome] = totals.get(outcome, 0) + count
    return totals


def wipe(engine: Engine) -> None:
    """Empty the projected tables (and the queues they created), as before a rebuild."""
    with engine.begin() as connection:
        for table in (*PROJECTED_ROWS, QueueRow):
            connection.execute(delete(table))


def test_a_batch_folded_per_case_gives_the_rows_of_one_event_per_batch(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    source = records(interleaved(customers=4))

    one_by_one = write_all(session_factory, in_batches(source, [1] * len(source)))
    expected = snapshot(engine)
    assert one_by_one == {Outcome.APPLIED: 40, Outcome.RECORDED: 4, Outcome.INVALID_PAYLOAD: 4,
                          Outcome.DUPLICATE: 4}  # fmt: skip
    assert len(expected["assignments"]) == 8 and len(expected["messages"]) == 12
    assert {row["queue"] for row in expected["cases"]} == {"tier2"}

    splits = [[len(source)], [7, 3, 11, 2], [random.Random(13).randint(1, 9) for _ in source]]
    for sizes in splits:
        wipe(engine)
        outcomes = write_all(session_factory, in_batches(source, sizes))
        assert outcomes == one_by_one, sizes
        assert snapshot(engine) == expected, sizes


class Crash(BaseException):
    """The process dying: no handler of the writer runs, the transaction is never committed."""


HELD = {
    "case_events": "SELECT event_id FROM case_events",
    "cases": "SELECT case_id, assignee, message_count, updated_at FROM cases",
    "messages": "SELECT case_id, message_key FROM messages",
}
"""What `crash_at` reads inside the dying transaction, one query per table."""


def held_rows(dbapi_connection: Any) -> dict[str, set[tuple[Any, ...]]]:
    """The rows `HELD` reads on this DBAPI connection, in its transaction."""
    held: dict[str, set[tuple[Any, ...]]] = {}
    cursor = dbapi_connection.cursor()
    for table, query in HELD.items():
        cursor.execute(query)
        held[table] = {tuple(row) for row in cursor.fetchall()}
    cursor.close()
    return held


def held_now(engine: Engine) -> dict[str, set[tuple[Any, ...]]]:
    """What `HELD` reads on a connection of its own: what is committed."""
    connection = engine.raw_connection()
    try:
        return held_rows(connection)
    finally:
        connection.close()


@contextmanager
def crash_at(
    engine: Engine, statement_start: str, occurrence: int
) -> Iterator[dict[str, set[tuple[Any, ...]]]]:
    """Crash at the `occurrence`-th statement that starts with `statement_start`.

    Yields, once the crash happened, what the dying transaction held at that moment
    (`held_rows` on its own connection): how far the batch had got, however its rows were
    sent (an INSERT the statement events see, or PostgreSQL's COPY, which they do not).
    """
    held: dict[str, set[tuple[Any, ...]]] = {}
    seen = 0

    def before(_connection: Any, cursor: Any, statement: str, *_rest: Any) -> None:
        nonlocal seen
        if statement.startswith(statement_start):
            seen += 1
            if seen == occurrence:
                held.update(held_rows(cursor.connection))
                raise Crash(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield held
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_a_crash_in_the_middle_of_a_batch_then_a_replay_from_the_start_gives_one_clean_pass(
    migrated_url: str,
) -> None:
    source = records(interleaved(customers=5))
    sizes = [20] * 10

    clean_engine = make_engine(migrated_url)
    write_all(make_session_factory(clean_engine), in_batches(source, sizes))
    clean = snapshot(clean_engine)
    wipe(clean_engine)
    clean_engine.dispose()

    crashing = make_engine(migrated_url)
    writer = BatchWriter(make_session_factory(crashing), ProjectionMetrics(CollectorRegistry()))
    batches = list(in_batches(source, sizes))
    writer.write(batches[0])
    before_crash = snapshot(crashing)
    committed = held_now(crashing)
    # The second batch dies after its events and cases were written, before its messages.
    with crash_at(crashing, "INSERT INTO messages", occurrence=1) as held, pytest.raises(Crash):
        writer.write(batches[1])
    dying = {CaseEvent.model_validate_json(record.value or b"").event_id for record in batches[1]}
    assert held["case_events"] == committed["case_events"] | {(each,) for each in dying}
    assert {row[0] for row in held["cases"]} == {row[0] for row in committed["cases"]}
    assert held["cases"] != committed["cases"]  # the batch's changes to its cases were written
    assert held["messages"] == committed["messages"]
    assert held_now(crashing) == committed
    assert snapshot(crashing) == before_crash  # nothing of the dead batch is kept
    crashing.dispose()

    restarted = make_engine(migrated_url)
    outcomes = write_all(make_session_factory(restarted), in_batches(source, [33] * 10))
    assert outcomes[Outcome.DUPLICATE] == len(batches[0]) + 5  # + the in-batch redeliveries
    assert snapshot(restarted) == clean
    again = write_all(make_session_factory(restarted), in_batches(source, [50] * 10))
    assert again == {Outcome.DUPLICATE: len(source)}
    assert snapshot(restarted) == clean
    restarted.dispose()


def test_payloads_are_stored_exactly_whatever_json_they_hold(
    session_factory: sessionmaker[Session],
) -> None:
    unusual = {
        "big": 2**70 + 1,  # beyond 64 bits: orjson alone would write nothing or read a float
        "negative": -(2**65) - 3,
        "text": 'Grüße 你好 🚚 \u0000 "q"',
        "x": 1.5e300,
    }
    event = other("cust-1", "sla.warning").model_copy(update={"payload": unusual})
    write_all(session_factory, iter([records([event])]))

    with session_factory() as session:
        assert session.scalars(select(CaseEventRow.payload)).all() == [unusual]


def resent(customer: str, number: int) -> CaseEvent:
    """The customer's message `number` written again under another event id (same key)."""
    message = appended(customer, number, text="resent")
    return message.model_copy(
        update={"event_id": event_id_for(message.case_id, "resent", str(number))}
    )


def test_cases_already_stored_keep_their_messages_and_owner_across_batches(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    # Each case's events spread over several batches, as on a live topic: a later batch
    # finds the case stored with its messages and its open assignment, and must read them
    # (a message written again under a new event id is no new message; the owner changes).
    lives = [
        [
            opened(customer),
            appended(customer, 1),
            owned(customer, 1, "bo", True, "assigned to bo"),
            resent(customer, 1),
            appended(customer, 2),
            owned(customer, 2, "bo", False, "accepted by bo"),
            resent(customer, 2),
            owned(customer, 3, "cy", False, "claimed by cy"),
        ]
        for customer in ("ana", "bea", "cid")
    ]
    events = [life[step] for step in range(len(lives[0])) for life in lives]
    source = records(events)

    write_all(session_factory, in_batches(source, [len(source)]))
    expected = snapshot(engine)
    cases = {row["case_id"]: row for row in expected["cases"]}
    assert {row["message_count"] for row in cases.values()} == {2}
    assert {row["assignee"] for row in cases.values()} == {"cy"}
    assert len(expected["messages"]) == 6 and len(expected["assignments"]) == 6
    assert (
        sorted(row["ended_at"] is None for row in expected["assignments"])
        == [False] * 3 + [True] * 3
    )

    for sizes in ([3] * 8, [1] * len(source), [4, 5, 2, 7, 6]):
        wipe(engine)
        outcomes = write_all(session_factory, in_batches(source, sizes))
        assert outcomes == {Outcome.APPLIED: len(source)}, sizes
        assert snapshot(engine) == expected, sizes
        # The same events again, in other batches: all duplicates, nothing changes.
        again = write_all(session_factory, in_batches(source, [5] * 5))
        assert again == {Outcome.DUPLICATE: len(source)}, sizes
        assert snapshot(engine) == expected, sizes
