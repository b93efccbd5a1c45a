"""After an assignment's restore, what the worker restored is frozen out of later collections."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from streams.rebalance import assign_partitions
from tests.streams.rebalance_fakes import TP, fake_pipeline


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    frozen = gc.get_freeze_count()
    yield
    if frozen == 0:
        gc.unfreeze()


class Restored(list[Any]):
    """A restored partition's held container (a plain list can't be found by identity)."""


class FakeStore:
    """A state store whose restore returns a tracked container per partition."""

    def __init__(self, source_topic: str) -> None:
        self.source_topic = source_topic
        self.held: dict[int, Restored] = {}

    @property
    def partitions(self) -> frozenset[int]:
        return frozenset(self.held)

    def keep(self, partitions: set[int]) -> list[int]:
        self.held = {p: held for p, held in self.held.items() if p in partitions}
        return sorted(set(partitions) - set(self.held))

    def restore(
        self, partitions: list[int], cancelled: object = None
    ) -> dict[int, list[tuple[bytes, datetime]]]:
        self.held.update({partition: Restored([[partition]]) for partition in partitions})
        return {partition: [(b"C-1", datetime.now(UTC))] for partition in partitions}


def tracked(thing: object) -> bool:
    return any(found is thing for found in gc.get_objects())


async def assign_partition_zero(
    cases: FakeStore, customers: FakeStore, assigned: Callable[[frozenset[int]], object]
) -> SimpleNamespace:
    """Run the worker's assignment of partition 0 of both stages on a pipeline of fakes."""
    pipeline = fake_pipeline(cases, customers, assigned)
    topics = [TP(t, 0) for t in ("threaded", "resolved")]
    await assign_partitions(pipeline, SimpleNamespace(), topics)  # type: ignore[arg-type]
    return pipeline


async def test_restored_state_is_frozen_once_the_assignment_is_restored() -> None:
    cases, customers = FakeStore("threaded"), FakeStore("resolved")
    assigned: list[frozenset[int]] = []
    pipeline = await assign_partition_zero(cases, customers, assigned.append)
    assert assigned[-1] == frozenset({0})  # the timer may fire it once it is restored
    assert len(pipeline.deadlines) == 1
    assert not tracked(cases.held[0])
    assert not tracked(customers.held[0])
    assert gc.get_freeze_count() > 0


async def test_the_restore_s_freed_pages_are_released_after_the_restore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases, customers = FakeStore("threaded"), FakeStore("resolved")
    released: list[frozenset[int]] = []
    monkeypatch.setattr(
        "streams.rebalance.release_free_memory", lambda: released.append(cases.partitions)
    )
    await assign_partition_zero(cases, customers, lambda _partitions: None)
    assert released == [frozenset({0})]  # once, with the partition restored
