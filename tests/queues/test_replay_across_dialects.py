"""Projection replay gives the same state on SQLite and on PostgreSQL.

The same `cases.events` topic on the real broker is projected into a fresh SQLite file
and into a fresh database on the real PostgreSQL server; every table, read back, must be
equal, and so must what the store's queries answer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine

from queues import CaseStore, Outcome, Projection, make_engine, make_session_factory, upgrade
from schemas import CaseEvent, Priority, Topics
from tests.kafka_support import create_topics, produce
from tests.queues.case_event_builders import (
    T0,
    appended,
    conversation,
    opened,
    other,
    routed,
    snapshot,
    to_bytes,
)

pytestmark = pytest.mark.kafka

BERLIN_WINTER = timezone(timedelta(hours=1))


def varied_events() -> list[CaseEvent]:
    """Events that exercise what dialects disagree on: text, time zones, JSON, ordering."""
    return [
        *conversation("cust-plain", messages=3),
        *conversation("cust-billing", messages=1, queue="billing"),
        opened("cust-unicode", channel="chat"),
        appended(
            "cust-unicode",
            1,
            channel="chat",
            text="Grüße! 你好 🚚 \"quoted\" 'single' \\ backslash\nnew line\ttab % _ ;--",
        ),
        # A time in another zone, with microseconds: stored in UTC on both.
        appended(
            "cust-unicode",
            2,
            channel="sms",
            at=(T0 + timedelta(minutes=5, microseconds=123456)).astimezone(BERLIN_WINTER),
            text="x" * 20_000,
        ),
        routed(
            "cust-unicode",
            queue="social",
            priority=Priority.URGENT,
            tags=["légal", "vip"],
            matched=["legal-threat", "vip"],
            channels=["chat", "sms"],
        ),
        # Urgent and low, to check the store's ordering agrees.
        opened("cust-low"),
        appended("cust-low", 1),
        routed("cust-low", priority=Priority.LOW),
        other("cust-plain", "sla.warning"),
        other("cust-plain", "sla.breached", at=T0 + timedelta(hours=8)),
        other("cust-nobody", "assignment.made"),  # an event for a case the store never built
    ]


def project(bootstrap: str, topic: str, engine: Engine) -> dict[Outcome, int]:
    with Projection(
        kafka_config={"bootstrap.servers": bootstrap},
        topic=topic,
        session_factory=make_session_factory(engine),
        group_id=f"test-replay-{uuid.uuid4().hex[:12]}",
        batch_size=5,
    ) as projection:
        projection.catch_up(timeout_seconds=60)
        return dict(projection.totals.outcomes)


def test_replaying_one_topic_into_sqlite_and_postgresql_gives_the_same_state(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, postgres_database_url: str
) -> None:
    create_topics(kafka_bootstrap, [topics.case_events], partitions=3)
    events = varied_events()
    produce(
        kafka_bootstrap,
        topics.case_events,
        [*((event.case_id, to_bytes(event)) for event in events), (b"C-X", b"not an event")],
    )
    sqlite_url = f"sqlite:///{(tmp_path / 'cases.db').as_posix()}"
    engines: dict[str, Engine] = {}
    outcomes: dict[str, dict[Outcome, int]] = {}
    for name, url in (("sqlite", sqlite_url), ("postgresql", postgres_database_url)):
        upgrade(url)
        engines[name] = make_engine(url)
        outcomes[name] = project(kafka_bootstrap, topics.case_events, engines[name])

    try:
        assert outcomes["sqlite"] == outcomes["postgresql"]
        assert outcomes["sqlite"][Outcome.MALFORMED] == 1
        assert outcomes["sqlite"][Outcome.RECORDED] == 3
        on_sqlite, on_postgresql = snapshot(engines["sqlite"]), snapshot(engines["postgresql"])
        assert len(on_sqlite["case_events"]) == len(events)
        assert len(on_sqlite["cases"]) == 4
        assert on_sqlite == on_postgresql
        times = [row["sent_at"] for row in on_postgresql["messages"]]
        assert all(time.tzinfo is not None and time.utcoffset() == timedelta(0) for time in times)

        stores = {name: CaseStore(engine) for name, engine in engines.items()}
        listed = {
            name: [case.to_json() for case in store.list_cases()] for name, store in stores.items()
        }
        assert listed["sqlite"] == listed["postgresql"]
        assert [case["priority"] for case in listed["sqlite"]] == [
            "urgent",
            "normal",
            "normal",
            "low",
        ]
        for case in listed["sqlite"]:
            details = {name: store.get_case(case["case_id"]) for name, store in stores.items()}
            assert details["sqlite"] is not None and details["postgresql"] is not None
            assert details["sqlite"].to_json() == details["postgresql"].to_json()
        unicode_case = next(case for case in listed["sqlite"] if case["priority"] == "urgent")
        shown = stores["postgresql"].get_case(unicode_case["case_id"])
        assert shown is not None
        assert shown.messages[0].text.startswith("Grüße! 你好 🚚")
        assert shown.messages[1].sent_at == (
            T0 + timedelta(minutes=5, microseconds=123456)
        ).astimezone(UTC)
    finally:
        for engine in engines.values():
            engine.dispose()
