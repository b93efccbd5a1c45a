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
