"""A rebalance's restore of the partitions that moved here does not stop the ones kept.

With the eager protocol every rebalance revokes all partitions and hands most of them
back; faust resumes the kept partitions' streams before the assignment handler restores
the new ones. Their batches (and the SLA timer) take the stage's lock, so the restore
must not hold it: on a worker taking over half of 1,000,000 cases it lasts ~10 s.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import Producer

from streams.rebalance import assign_partitions
from streams.state_store import DEADLINE_HEADER, ChangelogState, Deadlines
from tests.kafka_support import create_topics
from tests.streams.test_restore_freeze import fake_pipeline

DUE = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


class HeldUpRestore(ChangelogState):
    """The real store on a real changelog, whose changelog read waits until let go."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading = threading.Event()
        self.go_on = threading.Event()

    def _restore(self, partitions: list[int]) -> tuple[dict[int, dict[bytes, bytes]], Deadlines]:
        self.reading.set()
        assert self.go_on.wait(60), "the test never let the restore go on"
        return super()._restore(partitions)


@pytest.fixture
def changelog(kafka_bootstrap: str, topic_prefix: str) -> Iterator[str]:
    """A changelog whose partition 1 holds a case (moving here); partition 0 is kept."""
    topic = f"{topic_prefix}cases.changelog"
    create_topics(kafka_bootstrap, [topic], partitions=2, config={"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    header = [(DEADLINE_HEADER, DUE.isoformat().encode())]
    producer.produce(topic, key=b"moved", value=b'{"case":"moved"}', headers=header, partition=1)
    producer.flush(10)
    yield topic


async def test_kept_partitions_take_the_stage_lock_while_moved_ones_restore(
    kafka_bootstrap: str, changelog: str
) -> None:
    connection = {"bootstrap.servers": kafka_bootstrap}
    cases = HeldUpRestore("cases", changelog, "threaded", connection, deadline_field="due")
    customers = HeldUpRestore("customers", f"{changelog}.none", "resolved", connection)
    cases.hold(0, [(b"kept", b'{"case":"kept"}')])  # held from before the rebalance
    customers.go_on.set()  # nothing to restore there
    assigned: list[frozenset[int]] = []
    pipeline = fake_pipeline(cases, customers, assigned.append)
    pipeline.deadlines.schedule(0, b"kept", DUE)
    topics = [SimpleNamespace(topic="threaded", partition=p) for p in (0, 1)]
    assignment = asyncio.create_task(
        assign_partitions(pipeline, SimpleNamespace(), topics)  # type: ignore[arg-type]
    )
    try:
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, cases.reading.wait, 30), "restore never began"
        # a batch of the kept partition 0 (or the SLA timer) gets the lock meanwhile
        await asyncio.wait_for(pipeline.case_lock.acquire(), timeout=30)
        assert cases.version(0, b"kept") is not None  # its state still held
        assert 0 in assigned[-1]  # the timer fires the kept partition again already
        pipeline.case_lock.release()
    finally:
        cases.go_on.set()
    await asyncio.wait_for(assignment, timeout=60)
    assert cases.partitions == frozenset({0, 1})
    assert assigned[-1] == frozenset({0, 1})
    assert sorted(key for _p, key, _due in pipeline.deadlines.upcoming(DUE, 10)) == [
        b"kept",
        b"moved",
    ]
