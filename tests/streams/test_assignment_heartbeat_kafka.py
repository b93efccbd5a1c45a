"""A worker whose assignment handler outlasts the session stays in its group.

The worker restores the partitions it is assigned inside the rebalance handler (seconds
per 100,000 cases, `streams.rebalance.assign_partitions`). aiokafka stops its heartbeats
for the join and starts them again only once that handler has returned, so a restore
longer than the session timeout got the worker evicted: the group rebalanced again as
soon as it was done, it restored again, and with enough cases it never settled. The
worker's consumer heartbeats from the moment its assignment is known, as the Java
client's heartbeat thread does, so a handler of any length keeps its membership.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kafka_support import create_topics
from tests.streams.worker_apps import worker_app

pytestmark = pytest.mark.kafka

SESSION_SECONDS = 3.0
HANDLER_SECONDS = 3 * SESSION_SECONDS
"""The first assignment's handler: three sessions long, as a big restore is."""


def test_an_assignment_handler_longer_than_the_session_keeps_the_member_in_the_group(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}restore"
    create_topics(kafka_bootstrap, [topic], partitions=2)

    async def run() -> list[frozenset[int]]:
        app = worker_app(
            f"{topic_prefix}heartbeat-test",
            kafka_bootstrap,
            tmp_path,
            broker_session_timeout=SESSION_SECONDS,
            broker_heartbeat_interval=0.5,
        )
        assignments: list[frozenset[int]] = []
        handled = asyncio.Event()

        @app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"))
        async def take(stream: Any) -> None:
            async for _event in stream.events():
                pass

        @app.on_partitions_assigned.connect
        async def restore(_app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            assigned = args[0] if args else kwargs["assigned"]
            assignments.append(frozenset(tp.partition for tp in assigned if tp.topic == topic))
            if len(assignments) == 1:
                await asyncio.sleep(HANDLER_SECONDS)  # the long restore
                handled.set()

        await app.start()
        try:
            await asyncio.wait_for(handled.wait(), timeout=60)
            # an evicted member learns it at its next heartbeat and joins again: wait
            # well past that for an assignment that must not come
            settled = time.monotonic() + 3 * SESSION_SECONDS
            while time.monotonic() < settled and len(assignments) == 1:
                await asyncio.sleep(0.1)
        finally:
            await app.stop()
        return assignments

    assignments = asyncio.run(run())
    assert assignments == [frozenset({0, 1})], (
        f"the member was assigned {len(assignments)} times: {assignments}; "
        "the long handler got it evicted from the group"
    )
