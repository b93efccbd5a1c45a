"""Records fetched before a rebalance are neither processed nor acknowledged.

The chaos harness lost messages this way: a batch of records fetched before a rebalance
ran after it, against a partition whose state the assignment had just replaced. Its
records were skipped but acknowledged, and faust, which forgets a revoked partition's
committed offset, committed past them although nobody had processed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import faust
from faust.types import TP

from streams.generations import current_events, set_aside


@dataclass
class FakeMessage:
    generation_id: int | None
    acked: bool = False
    partition: int = 0


@dataclass
class FakeEvent:
    message: FakeMessage = field(default_factory=lambda: FakeMessage(None))


def test_events_of_an_older_generation_are_set_aside() -> None:
    fresh, stale, untagged = FakeEvent(FakeMessage(7)), FakeEvent(FakeMessage(6)), FakeEvent()
    assert current_events([fresh, stale, untagged], 7) == [fresh, untagged]
    assert stale.message.acked and not fresh.message.acked and not untagged.message.acked


def test_without_a_consumer_every_event_is_kept() -> None:
    events = [FakeEvent(FakeMessage(1)), FakeEvent(FakeMessage(2))]
    assert current_events(events, None) == events


def test_faust_neither_commits_nor_waits_for_a_message_set_aside() -> None:
    """What `set_aside` relies on in faust itself: an acked message is never acked again."""
    app = faust.App("generations-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    message = faust.types.Message(
        topic="t", partition=0, offset=5, timestamp=0.0, timestamp_type=0, headers=None,
        key=None, value=None, checksum=None, tp=TP("t", 0), generation_id=1,
    )  # fmt: skip
    consumer.track_message(message)
    set_aside(message)
    assert message.ack(consumer) is False
    assert not consumer._acked[TP("t", 0)]
    consumer._clean_unacked_messages()
    assert message not in consumer._unacked_messages


async def test_a_batch_waiting_for_a_revoked_partition_ends_once_its_records_are_stale() -> None:
    """Between the revocation and the new generation, a batch of the old one waits for a
    partition that may be moving elsewhere (no batch starts on a revoked partition before
    the assignment). Once the new generation is known its records are set aside and the
    wait ends: it must not wait for a partition that never comes back."""
    import asyncio

    from streams.rebalance import restored_then

    class RevokedStore:  # partition 0 was revoked and goes to another worker
        name = "cases"

        def ready(self, partitions: set[int]) -> bool:
            return not partitions

    generation = [1]
    event = FakeEvent(FakeMessage(generation_id=1, partition=0))
    ran: list[list[FakeEvent]] = []

    async def batch(events: list[FakeEvent]) -> None:
        ran.append(list(events))

    def current(events: list[FakeEvent]) -> list[FakeEvent]:
        return current_events(events, generation[0])

    waiting = asyncio.create_task(restored_then(RevokedStore(), [event], batch, current))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # the rebalance is not over: it waits
    generation[0] = 2  # the assignment arrived: a new generation
    assert await asyncio.wait_for(waiting, 5) == []
    assert ran == [[]] and event.message.acked  # set aside: neither processed nor acknowledged
