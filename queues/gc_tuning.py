"""Garbage-collector settings for a process that applies batches of events (the projection).

A batch allocates tens of thousands of short-lived objects (parsed events, rows, bound
parameters) that reference counting frees. With Python's default threshold (700
allocations) the cyclic collector runs dozens of times per batch, and every older
collection walks everything start-up left alive: modules, SQLAlchemy's and pydantic's
caches. Freezing what is alive once start-up is over takes it out of every later
collection, and a higher first threshold makes the collections that remain rarer.
Measured on the batch writer alone (SQLite, 20,000 events in batches of 500, a loaded
2-core machine), the two together took its CPU per event from about 57 to 40-47 us.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations (less deallocations) between two collections of the youngest generation."""


def tune_for_batches() -> None:
    """Freeze the objects alive now and collect the youngest generation less often.

    Call it once, when the process has finished starting, before its first batch. It
    changes the whole process's collector: call it from a process's entry point only.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
