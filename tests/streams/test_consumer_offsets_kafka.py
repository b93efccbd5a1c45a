"""What the stall check reads from the worker's real consumer, on a transactional topic.

A transaction's commit marker takes the offset after its last record and is never
delivered; the consumer's fetch position passes it, so a partition read to its end has its
position at the high watermark. The SLA timer's view (`fetched_offsets`) says the same, with
the last record fetched.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from streams.event_time import Fetched
from streams.faust_transport import consumer_offsets, fetched_offsets
from streams.progress import PartitionOffsets, StageProgress
from tests.kafka_support import create_topics, high_watermarks, produce_in_a_transaction
from tests.streams.worker_apps import worker_app

pytestmark = pytest.mark.kafka


def test_a_partition_read_to_its_commit_marker_has_its_position_at_the_end(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}offsets"
    create_topics(kafka_bootstrap, [topic], partitions=1)
    produce_in_a_transaction(kafka_bootstrap, [(topic, "k", f"v{n}") for n in range(3)])
    assert high_watermarks(kafka_bootstrap, [(topic, 0)]) == {(topic, 0): 4}  # marker at 3

    async def read_all() -> tuple[
        dict[tuple[str, int], PartitionOffsets], Fetched | None, list[int]
    ]:
        app = worker_app(f"{topic_prefix}offsets-test", kafka_bootstrap, tmp_path)
        seen: list[int] = []

        @app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"))
        async def take(stream: Any) -> None:
            async for event in stream.events():
                seen.append(event.message.offset)

        await app.start()
        try:
            deadline = time.monotonic() + 60
            while True:  # faust notes a record delivered once its agent has it queued
                held = consumer_offsets(app)
                offsets = held.get((topic, 0))
                fetched = fetched_offsets(app, topic, 0)
                if (
                    len(seen) == 3
                    and offsets is not None
                    and offsets.delivered == 2
                    and fetched is not None
                    and fetched.position == 4  # noted once the fetch that passed it returned
                ):
                    return held, fetched, seen
                assert time.monotonic() < deadline, f"the agent saw {seen}; {held}; {fetched}"
                await asyncio.sleep(0.05)
        finally:
            await app.stop()

    held, fetched, seen = asyncio.run(read_all())
    assert seen == [0, 1, 2]
    assert held[topic, 0] == PartitionOffsets(end=4, position=4, delivered=2)
    # what the SLA timer reads: fetched past the marker, the last record fetched at 2
    assert fetched == Fetched(position=4, last_record=2)
    now = [0.0]
    progress = StageProgress(1, lambda: held, lambda: now[0])
    progress.watch("cases", [topic])
    progress.finished({(topic, 0): 2})
    assert progress.stalled() == {}
    now[0] += 600
    assert progress.stalled() == {}  # idle: only the marker is past the last record finished
