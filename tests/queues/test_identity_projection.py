"""Merges and splits into the case store: idempotent, so replicas that each read the whole
identity topic (and a restart that reads it again) end with the same rows."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.history import customer_group
from queues.identity_projection import apply_identity
from queues.models import CustomerMergeRow
from schemas import IdentityKind, IdentityRecord

AT = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def decision(kind: IdentityKind, customer: str, into: str | None = None) -> IdentityRecord:
    return IdentityRecord(
        kind=kind, customer_id=customer, merged_into=into, reason="same person", at=AT
    )


def apply_all(sessions: sessionmaker[Session], *records: IdentityRecord) -> None:
    for record in records:
        with sessions.begin() as session:
            apply_identity(session, record)


def merges(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as session:
        return {r.customer_id: r.merged_into for r in session.scalars(select(CustomerMergeRow))}


def test_reading_the_topic_again_ends_in_the_same_merges(
    session_factory: sessionmaker[Session],
) -> None:
    log = [
        decision(IdentityKind.MERGE, "b", "a"),
        decision(IdentityKind.MERGE, "c", "b"),
        decision(IdentityKind.MERGE, "d", "a"),
        decision(IdentityKind.SPLIT, "d"),
        decision(IdentityKind.LINK, "a").model_copy(update={"handle": "email:a@example.com"}),
    ]
    apply_all(session_factory, *log)
    first = merges(session_factory)
    apply_all(session_factory, *log)  # a restart, or a second replica
    apply_all(session_factory, *log[-2:])  # a compacted topic keeps only the split of d

    assert merges(session_factory) == first == {"b": "a", "c": "b"}
    with session_factory() as session:
        assert customer_group(session, "c") == ["a", "b", "c"]
        assert customer_group(session, "d") == ["d"]


def test_a_merge_cycle_does_not_loop(session_factory: sessionmaker[Session]) -> None:
    apply_all(
        session_factory,
        decision(IdentityKind.MERGE, "x", "y"),
        decision(IdentityKind.MERGE, "y", "x"),
    )
    with session_factory() as session:
        assert customer_group(session, "x") == ["x", "y"]
