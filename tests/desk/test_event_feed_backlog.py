"""A stream whose client reads too slowly stops queueing batches and reads the store instead."""

from __future__ import annotations

from datetime import UTC, datetime

from queues.desk.feed import MAX_PENDING_BATCHES, Subscription
from queues.desk.reads import ChangedEvent


def change(offset: int) -> ChangedEvent:
    return ChangedEvent(
        partition=0,
        offset=offset,
        event_id=f"e{offset}",
        case_id="C-1",
        type="case.updated",
        at=datetime(2026, 12, 5, tzinfo=UTC),
        reason="test",
        queue="general",
        assignee=None,
    )


async def test_an_overflowing_stream_drops_its_backlog_and_is_marked_behind() -> None:
    subscription = Subscription("ana", {0: -1})
    subscription.behind = False  # caught up, following the shared batches
    for offset in range(MAX_PENDING_BATCHES):
        subscription.offer([change(offset)])
    assert not subscription.behind
    subscription.offer([change(MAX_PENDING_BATCHES)])  # one batch too many
    assert subscription.behind  # it will read what it missed from the store, at its position
    assert await subscription.next_batch(timeout_seconds=1) == ()  # woken, nothing held
    assert await subscription.next_batch(timeout_seconds=0.01) is None


def test_a_stream_skips_what_it_has_already_sent() -> None:
    subscription = Subscription("ana", {0: 5})
    assert not subscription.advance(change(5))
    assert subscription.advance(change(6))
    assert subscription.position == {0: 6}
    assert not subscription.advance(change(6))
