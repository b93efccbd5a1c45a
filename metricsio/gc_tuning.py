"""Python's cyclic garbage collector in a long-running process: its tuning, and its pauses.

Reference counting frees almost everything the worker and the projection allocate; the
cyclic collector only finds cycles, yet every collection walks every object tracked in the
generations it collects. The worker's case and customer states are bytes, which the
collector does not track, but its deadline index is two big containers over every open
case. Measured with 1,000,000 open cases (`bench/worker_gc.py`, bench/RESULTS.md, "Garbage
collection in the worker"): a full collection takes ~50-65 ms (12-20 ms without the cases);
and after one, the index's dict is untracked until the next case is scheduled, which
tracks it again as a young object, so the next young collections walk it too (40-53
ms). Stage C's input waits for each of them, past the 20 ms a stage may be held up.

- `freeze_long_lived`: a full collection, then `gc.freeze()`: what is alive now moves to
  the permanent generation, which no later collection walks. The worker calls it once
  after start-up and again after each assignment's restore (streams/rebalance.py), so the
  restored states and the deadline index leave every later collection; the projection and
  `escalator db rebuild` once after start-up. The call is itself one full collection of what
  is not frozen yet (~150 ms after restoring 1,000,000 cases), during the rebalance, where
  the restore takes seconds. Reference counting still frees frozen objects; only a cycle
  among them is never collected (none is expected: a held state is bytes in a dict).
- `tune_collector`: that, and the youngest generation's threshold raised from Python's
  700 to `YOUNG_THRESHOLD` (10,000), so the collections that remain run over ten times less
  often (each walks only what was allocated since the previous one and is still alive: with
  Python's 700, 0.1-0.3 ms; with 10,000 none ran in the bench's 20,000 messages).
  The other two thresholds stay Python's (10, 10). For the projection's batch writer the two
  together took its CPU per event from about 57 to 40-47 us (SQLite, 20,000 events in
  batches of 500, a loaded 2-core machine). Not a setting: no deployment has shown a reason
  to change it.
- `record_gc_pauses`: times every collection through `gc.callbacks` into the histogram
  `escalator_gc_pause_seconds{generation}` (docs/metrics.md).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram

from metricsio import MULTIPROCESS_DIR_VARIABLE

__all__ = [
    "GC_PAUSES",
    "YOUNG_THRESHOLD",
    "CollectionTimer",
    "freeze_long_lived",
    "record_gc_pauses",
    "tune_collector",
]

YOUNG_THRESHOLD = 10_000
"""Allocations (less deallocations) between two collections of the youngest generation."""

GC_PAUSES = Histogram(
    "escalator_gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation collected (2: a full one).",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def freeze_long_lived() -> None:
    """Collect everything, then freeze what survives: no later collection walks it again.

    Call it when a process has just built what it will keep for long (after start-up, after
    a restore). It changes the whole process's collector: call it from a process's own code
    paths only.
    """
    gc.collect()
    gc.freeze()


def tune_collector() -> None:
    """Freeze the objects alive now and collect the youngest generation less often.

    Call it once, when the process has finished starting, before its first batch.
    """
    freeze_long_lived()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)


class CollectionTimer:
    """A `gc.callbacks` entry that times each collection and hands on its pause.

    `observe(generation, seconds)` is called at the end of every collection, while the
    collector still runs: it must not allocate a tracked object while holding a lock that
    code outside a collection takes too.
    """

    def __init__(self, observe: Callable[[int, float], None]) -> None:
        self._observe = observe
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        """`gc.callbacks`' signature: `phase` is "start" or "stop"."""
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._observe(info["generation"], time.perf_counter() - self._started)


class _PauseTimer(CollectionTimer):
    """Times each collection into `GC_PAUSES`.

    The histogram's children are bound beforehand: inside a collection the callback only
    adds to their values. prometheus-client guards each value with its own lock and never
    allocates a tracked object while holding it, so no collection can start (and call back
    here) with that lock held. Its multiprocess mode shares one lock across all values and
    does allocate under it: `record_gc_pauses` stays off there.
    """

    def __init__(self) -> None:
        children = [GC_PAUSES.labels(str(generation)) for generation in range(3)]
        super().__init__(lambda generation, seconds: children[generation].observe(seconds))


def record_gc_pauses() -> bool:
    """Time every later collection of this process into `GC_PAUSES` (once per process).

    Returns whether the pauses are recorded: not in prometheus-client's multiprocess mode.
    """
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        return False
    if not any(isinstance(callback, _PauseTimer) for callback in gc.callbacks):
        gc.callbacks.append(_PauseTimer())
    return True
