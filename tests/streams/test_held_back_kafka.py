"""A partition the worker holds back is not fetched until it lets it go, whatever faust resumes.

The worker restores the partitions a rebalance moved to it after the rebalance handler
(`streams.rebalance.MovedRestore`), and their records must wait for that state. Its consumer
holds back every partition of the stateful topics as soon as they are assigned; the handler
lets go of the ones whose state it kept, the restore of the moved ones when it is done.
faust resumes every partition once its own recovery is over, while the handler still runs:
the held-back ones stay paused through that.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.kafka_support import create_topics, produce
from tests.streams.worker_apps import worker_app

pytestmark = pytest.mark.kafka

RECORDS = 40
SETTLE_SECONDS = 3.0
"""How long a held-back partition must stay unread after the rest is read (faust's recovery
resumes streams within a second of the assignment)."""


def test_a_held_back_partition_is_read_only_once_let_go(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}held"
    create_topics(kafka_bootstrap, [topic], partitions=2)
    produce(kafka_bootstrap, topic, [(f"key-{n}", f"{n}") for n in range(RECORDS)])

    async def run() -> tuple[list[int], list[int]]:
        app = worker_app(f"{topic_prefix}held-test", kafka_bootstrap, tmp_path, (topic,))
        read: list[int] = []
        assigned = asyncio.Event()

        @app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"))
        async def take(stream: Any) -> None:
            async for event in stream.events():
                read.append(event.message.partition)

        @app.on_partitions_assigned.connect
        async def hold(_app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            tps = args[0] if args else kwargs["assigned"]
            await asyncio.sleep(1.0)  # the handler reads what it keeps; faust resumes meanwhile
            app.consumer.let_go({tp for tp in tps if tp.partition == 0})  # type: ignore[attr-defined]
            assigned.set()

        await app.start()
        try:
            await asyncio.wait_for(assigned.wait(), timeout=60)
            loop = asyncio.get_running_loop()
            give_up = loop.time() + 30
            while 0 not in read and loop.time() < give_up:
                await asyncio.sleep(0.1)
            await asyncio.sleep(SETTLE_SECONDS)
            before = list(read)
            held = {tp for tp in app.consumer.assignment() if tp.partition == 1}
            app.consumer.let_go(held)  # type: ignore[attr-defined]
            while len(read) < RECORDS and loop.time() < give_up + 30:
                await asyncio.sleep(0.1)
        finally:
            await app.stop()
        return before, read

    before, after = asyncio.run(run())
    assert 0 in before, "partition 0 was never read"
    assert 1 not in before, "a held-back partition was fetched"
    assert 1 in after, "the partition let go was never read"
    assert len(after) == RECORDS
