"""The partitions a rebalance moves to a worker restore after its handler; the kept ones go on.

On a leave, the worker that takes over restored the moved partitions inside the rebalance
handler under the stages' locks, so every partition it kept paused for that restore too (32 s
to over 41 s with 500,000 cases moved, bench/RESULTS.md). Now the handler only keeps what
stays and holds the moved partitions' inputs back from the consumer's fetches; their restore
runs afterwards, and their inputs are fetched once their state is held.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from streams.rebalance import Fetching, MovedRestore, assign_partitions, release_partitions
from tests.streams.rebalance_fakes import TP, fake_pipeline

DUE = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class GatedStore:
    """A state store whose restore of a moved partition waits until the test opens its gate."""

    def __init__(self, source_topic: str, held: set[int]) -> None:
        self.source_topic = source_topic
        self.held = set(held)
        self.gate = threading.Event()
        self.reading = threading.Event()
        self.saw_cancel = False
        self.released: set[int] = set()

    @property
    def partitions(self) -> frozenset[int]:
        return frozenset(self.held)

    def keep(self, partitions: set[int]) -> list[int]:
        self.held &= set(partitions)
        return sorted(set(partitions) - self.held)

    def restore(
        self, partitions: list[int], cancelled: threading.Event | None = None
    ) -> dict[int, list[tuple[bytes, datetime]]] | None:
        self.reading.set()
        while not self.gate.wait(0.01):
            if cancelled is not None and cancelled.is_set():
                self.saw_cancel = True
                return None  # as `ChangelogState.restore`: stopped, nothing held
        self.held |= set(partitions)
        return {partition: [(f"C-{partition}".encode(), DUE)] for partition in partitions}

    def release(self, partitions: set[int]) -> None:
        self.released |= set(partitions)


class Recorder:
    """The consumer's side: what is held back from fetching, and what was let go."""

    def __init__(self) -> None:
        self.held_back: set[TP] = set()
        self.let_go: list[set[TP]] = []

    def fetching(self) -> Fetching:
        def hold_back(tps: set[Any]) -> None:
            self.held_back |= tps

        def let_go(tps: set[Any]) -> None:
            self.held_back -= tps
            self.let_go.append(set(tps))

        return Fetching(hold_back, let_go)


def a_pipeline(cases: GatedStore, customers: GatedStore) -> SimpleNamespace:
    fireable: list[frozenset[int]] = []
    pipeline = fake_pipeline(cases, customers, fireable.append)
    pipeline.fireable = fireable
    return pipeline


def assignment(*partitions: int) -> list[TP]:
    return [TP(t, p) for t in ("threaded", "actions", "resolved") for p in partitions]


async def assign(
    pipeline: SimpleNamespace, assigned: list[TP], restore: MovedRestore, consumer: Recorder
) -> None:
    """The worker's assignment handler, on a pipeline of fakes."""
    await assign_partitions(
        cast(Any, pipeline), cast(Any, SimpleNamespace()), assigned, (restore, consumer.fetching())
    )


async def until(condition: Any, seconds: float = 5.0) -> None:
    give_up = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < give_up, "timed out"
        await asyncio.sleep(0.01)


async def test_the_kept_partitions_go_on_while_the_moved_ones_restore() -> None:
    cases, customers = GatedStore("threaded", {0}), GatedStore("resolved", {0})
    customers.gate.set()  # the customers restore at once; the cases wait for the gate
    pipeline = a_pipeline(cases, customers)
    consumer, restore = Recorder(), MovedRestore()

    await asyncio.wait_for(assign(pipeline, assignment(0, 1), restore, consumer), timeout=5)
    await until(cases.reading.is_set)

    # the handler has returned with partition 1 of stage C still restoring
    assert restore.running
    # the kept partitions are fetched again; stage C's moved ones are not
    assert consumer.let_go[0] == {TP("threaded", 0), TP("actions", 0), TP("resolved", 0)}
    assert consumer.held_back == {TP("threaded", 1), TP("actions", 1)}
    assert pipeline.fireable[0] == frozenset({0})  # the timer fires the kept partition
    # a batch of a kept partition runs: nothing holds the stage locks
    await asyncio.wait_for(pipeline.case_lock.acquire(), timeout=0.5)
    pipeline.case_lock.release()
    assert consumer.let_go[1:] == [{TP("resolved", 1)}]  # stage B's moved one is restored

    cases.gate.set()
    await until(lambda: not restore.running)
    assert cases.partitions == {0, 1}
    assert consumer.held_back == set()
    assert consumer.let_go[-1] == {TP("threaded", 1), TP("actions", 1)}
    assert pipeline.fireable[-1] == frozenset({0, 1})
    assert pipeline.deadlines.deadline_of(1, b"C-1") == DUE


async def test_a_revocation_stops_a_restore_under_way_and_lets_nothing_go() -> None:
    cases, customers = GatedStore("threaded", {0}), GatedStore("resolved", {0})
    customers.gate.set()
    pipeline = a_pipeline(cases, customers)
    consumer, restore = Recorder(), MovedRestore()
    assigned = assignment(0, 1)
    await assign(pipeline, assigned, restore, consumer)
    await until(cases.reading.is_set)

    await asyncio.wait_for(release_partitions(cast(Any, pipeline), assigned, restore), timeout=5)

    assert cases.saw_cancel
    assert not restore.running
    assert cases.partitions == {0}  # nothing half read is held: the next owner restores it
    assert TP("threaded", 1) not in set().union(*consumer.let_go)
    assert cases.released == {0, 1}


async def test_a_restore_that_finished_as_the_revocation_came_indexes_its_deadlines() -> None:
    class CancelledJustAfter(GatedStore):
        """Holds the partitions, and the revocation's stop arrives right after."""

        def restore(self, partitions: list[int], cancelled: Any = None) -> Any:
            found = super().restore(partitions, cancelled)
            cancelled.set()
            return found

    cases, customers = CancelledJustAfter("threaded", {0}), GatedStore("resolved", {0})
    cases.gate.set()
    customers.gate.set()
    pipeline = a_pipeline(cases, customers)
    restore = MovedRestore()
    await assign(pipeline, assignment(0, 1), restore, Recorder())
    await until(lambda: not restore.running)
    # held, so kept if it comes back: its deadlines must be indexed, or they never fire
    assert cases.partitions == {0, 1}
    assert pipeline.deadlines.deadline_of(1, b"C-1") == DUE


async def test_a_failed_restore_goes_to_the_guard() -> None:
    failures: list[BaseException] = []

    async def guard(work: Any) -> None:
        try:
            await work
        except RuntimeError as exc:
            failures.append(exc)

    class Broken(GatedStore):
        def restore(self, partitions: list[int], cancelled: Any = None) -> Any:
            raise RuntimeError("restoring changelog: broker gone")

    cases, customers = Broken("threaded", set()), GatedStore("resolved", set())
    customers.gate.set()
    pipeline = a_pipeline(cases, customers)
    consumer, restore = Recorder(), MovedRestore(guard)
    await assign(pipeline, assignment(0), restore, consumer)
    await until(lambda: not restore.running)
    assert [str(exc) for exc in failures] == ["restoring changelog: broker gone"]
    assert TP("threaded", 0) in consumer.held_back  # never let go: the guard ends the worker
