"""Ids as long as the contracts allow reach the desk on SQLite and PostgreSQL alike.

Before migration 0004 PostgreSQL kept customer ids in 255 characters and message keys,
senders and external ids in 512, so a case whose ids the contract accepted never reached the
store there (while SQLite, which ignores declared lengths, passed).
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, MetaData, Table, select
from sqlalchemy.orm import Session, sessionmaker

from queues import (
    BatchWriter,
    CaseStore,
    Outcome,
    ProjectionMetrics,
    SourceRecord,
    make_engine,
    make_session_factory,
    upgrade,
)
from queues.desk.reads import DeskReads
from queues.models import CaseRow, MessageRow
from schemas import (
    CaseEvent,
    CaseMessage,
    CaseOpenedPayload,
    InboundMessage,
    MessageAppendedPayload,
)
from schemas.ids import case_id_for, event_id_for
from schemas.limits import MAX_CHANNEL_LENGTH, MAX_ID_BYTES, MAX_ID_LENGTH
from tests.queues.case_event_builders import T0, to_bytes


def cyrillic(length: int, seed: int) -> str:
    """Two bytes a character, drawn at random so PostgreSQL cannot compress them away."""
    rng = random.Random(seed)
    return "".join(chr(rng.randrange(0x0410, 0x0450)) for _ in range(length))


LONGEST_CHANNEL = "c" * MAX_CHANNEL_LENGTH

ASCII_IDS = {
    "channel": "email",
    "customer_id": "cust-" + "c" * (MAX_ID_LENGTH - 5),
    "external_id": "<" + "e" * (MAX_ID_LENGTH - 2) + ">",
    "sender": "s" * (MAX_ID_LENGTH - 12) + "@example.com",
}
WIDEST_IDS = {  # at the bounds in characters and in bytes, on the longest channel name
    "channel": LONGEST_CHANNEL,
    "customer_id": cyrillic(MAX_ID_LENGTH, 1),
    "external_id": cyrillic(MAX_ID_LENGTH, 2),
    "sender": cyrillic(MAX_ID_LENGTH, 3),
}


def inbound(ids: dict[str, str]) -> InboundMessage:
    """The message as the contract takes it: the ids are valid at the edge."""
    return InboundMessage.model_validate(
        {
            "channel": ids["channel"],
            "external_id": ids["external_id"],
            "sender": ids["sender"],
            "text": "My order has not arrived.",
            "sent_at": T0.isoformat(),
            "customer": {"id": ids["customer_id"]},
        }
    )


def events_for(message: InboundMessage, customer_id: str) -> list[CaseEvent]:
    case_id = case_id_for(customer_id, message.message_key)
    opened = CaseOpenedPayload(
        customer_id=customer_id,
        channel=message.channel,
        opened_at=T0,
        message_key=message.message_key,
        evidence="no open case for customer",
    )
    appended = MessageAppendedPayload(
        customer_id=customer_id,
        message_key=message.message_key,
        message=CaseMessage(
            channel=message.channel,
            text=message.text,
            sent_at=message.sent_at,
            sender=message.sender,
            external_id=message.external_id,
        ),
        evidence="new case",
    )
    return [
        CaseEvent(
            event_id=event_id_for(case_id, "case.opened"),
            case_id=case_id,
            type="case.opened",
            at=T0,
            reason="first message from customer",
            payload=opened.model_dump(mode="json"),
        ),
        CaseEvent(
            event_id=event_id_for(case_id, "message.appended", message.message_key),
            case_id=case_id,
            type="message.appended",
            at=T0 + timedelta(seconds=1),
            reason="message",
            payload=appended.model_dump(mode="json"),
        ),
    ]


def project(session_factory: sessionmaker[Session], events: list[CaseEvent]) -> None:
    writer = BatchWriter(session_factory, ProjectionMetrics(CollectorRegistry()))
    result = writer.write(
        [
            SourceRecord(value=to_bytes(event), partition=0, offset=index)
            for index, event in enumerate(events)
        ]
    )
    assert result.outcomes == {Outcome.APPLIED: len(events)}


@pytest.mark.parametrize("ids", [ASCII_IDS, WIDEST_IDS], ids=["ascii", "two-byte"])
def test_a_case_with_ids_at_the_contracts_bounds_reaches_the_desk(
    migrated_url: str, session_factory: sessionmaker[Session], ids: dict[str, str]
) -> None:
    message = inbound(ids)
    customer_id = message.customer.id or ""
    assert len(customer_id) == MAX_ID_LENGTH
    assert len(message.external_id) == len(message.sender) == MAX_ID_LENGTH
    if ids is WIDEST_IDS:
        assert len(customer_id.encode()) == MAX_ID_BYTES
    events = events_for(message, customer_id)
    project(session_factory, events)

    case_id = events[0].case_id
    store = CaseStore.open(migrated_url)
    try:
        detail = store.get_case(case_id)
        assert detail is not None
        assert detail.summary.customer_id == customer_id
        [shown] = detail.messages
        assert (shown.message_key, shown.sender) == (message.message_key, message.sender)
        assert [case.case_id for case in store.list_cases()] == [case_id]
    finally:
        store.close()
    history = DeskReads(session_factory).history(case_id)
    assert history is not None
    assert history["customer_id"] == customer_id
    assert [m["message_key"] for m in history["messages"]] == [message.message_key]
    with session_factory() as session:
        row = session.scalars(select(MessageRow)).one()
        assert row.external_id == message.external_id


def test_upgrading_an_existing_store_keeps_its_cases_and_takes_long_ids(
    database_url: str,
) -> None:
    """A store at 0003 with cases in it: after the upgrade they are all there, and long ids fit."""
    upgrade(database_url, "0003_presence")
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    try:
        short = {**ASCII_IDS, "customer_id": "cust-1", "external_id": "m-1", "sender": "a@b.c"}
        old_events = events_for(inbound(short), "cust-1")
        _store_as_of_0003(engine, old_events)
        upgrade(database_url)
        with sessions() as session:
            case = session.get(CaseRow, old_events[0].case_id)
            assert case is not None and case.customer_id == "cust-1" and case.message_count == 1
            assert case.contacts == 1  # counted from its messages by 0005
            [kept] = session.scalars(select(MessageRow)).all()
            assert (kept.message_key, kept.sender, kept.external_id) == (
                "email:m-1",
                "a@b.c",
                "m-1",
            )
            assert kept.sent_at == T0
        project(sessions, events_for(inbound(WIDEST_IDS), WIDEST_IDS["customer_id"]))
        with sessions() as session:
            assert session.scalars(
                select(CaseRow.customer_id).order_by(CaseRow.customer_id)
            ).all() == sorted(["cust-1", WIDEST_IDS["customer_id"]])
            assert len(session.scalars(select(MessageRow)).all()) == 2
    finally:
        engine.dispose()


def _store_as_of_0003(engine: Engine, events: list[CaseEvent]) -> None:
    """Write the rows the 0003 projection made of a case.opened and its message: today's
    models have columns that 0003 lacks, so they cannot write to a store at 0003."""
    opened, appended = events
    message = appended.payload["message"]
    tables = MetaData()
    cases = Table("cases", tables, autoload_with=engine)
    messages = Table("messages", tables, autoload_with=engine)
    with engine.begin() as connection:
        connection.execute(
            cases.insert().values(
                case_id=opened.case_id,
                customer_id=opened.payload["customer_id"],
                status="new",
                tags=[],
                channels=["email"],
                matched=[],
                sla={},
                opened_at=opened.at,
                updated_at=appended.at,
                last_event_at=appended.at,
                message_count=1,
                assignment_pending=False,
                channel="email",
            )
        )
        connection.execute(
            messages.insert().values(
                case_id=opened.case_id,
                message_key=appended.payload["message_key"],
                channel="email",
                direction="inbound",
                sender=message["sender"],
                external_id=message["external_id"],
                subject=message.get("subject"),
                text=message["text"],
                sent_at=T0,
                event_id=appended.event_id,
            )
        )
