"""The collector tuning freezes what is alive and raises the young threshold; pauses are timed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from metricsio import MULTIPROCESS_DIR_VARIABLE
from metricsio.gc_tuning import (
    YOUNG_THRESHOLD,
    freeze_long_lived,
    record_gc_pauses,
    tune_collector,
)


class Node:
    """A container the collector tracks, able to form a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    """Put the process's collector back as it was: thresholds, frozen objects, callbacks."""
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    callbacks = list(gc.callbacks)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks
    if frozen == 0:
        gc.unfreeze()  # what the test froze goes back to the oldest generation


def tracked(thing: object) -> bool:
    """Whether a collection of some generation would walk this object (frozen ones: no)."""
    return any(found is thing for found in gc.get_objects())


def test_tuning_freezes_what_is_alive_and_raises_the_young_threshold() -> None:
    gc.set_threshold(700, 10, 10)
    kept = Node()
    assert tracked(kept)
    tune_collector()
    assert not tracked(kept)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)


def test_garbage_cycles_are_collected_before_the_freeze() -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    freeze_long_lived()
    assert gone() is None  # frozen, the cycle would never have been freed


def test_objects_made_after_the_freeze_are_collected_as_usual() -> None:
    freeze_long_lived()
    later = Node()
    assert tracked(later)


def pauses(generation: int) -> float:
    found = REGISTRY.get_sample_value(
        "escalator_gc_pause_seconds_count", {"generation": str(generation)}
    )
    return found or 0.0


def test_every_collection_is_timed_by_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_VARIABLE, raising=False)
    assert record_gc_pauses()
    before = [pauses(generation) for generation in range(3)]
    gc.collect(0)
    gc.collect(2)
    gc.collect(2)
    after = [pauses(generation) for generation in range(3)]
    assert after[0] - before[0] >= 1
    assert after[2] - before[2] >= 2
    total = REGISTRY.get_sample_value("escalator_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None and total > 0


def test_recording_is_installed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_VARIABLE, raising=False)
    record_gc_pauses()
    count = len(gc.callbacks)
    record_gc_pauses()
    assert len(gc.callbacks) == count
    before = pauses(2)
    gc.collect(2)
    assert pauses(2) - before == 1  # one timer, one observation per collection


def test_no_recording_in_multiprocess_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    # there, one lock guards every value and is held while allocating: a collection starting
    # under it would call back into it
    monkeypatch.setenv(MULTIPROCESS_DIR_VARIABLE, str(tmp_path))
    gc.callbacks[:] = [c for c in gc.callbacks if type(c).__name__ != "_PauseTimer"]
    count = len(gc.callbacks)
    assert not record_gc_pauses()
    assert len(gc.callbacks) == count
