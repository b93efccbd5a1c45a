"""Holding off Python's cyclic garbage collector for a short, latency-bound stretch.

A worker holding a million open cases tracks millions of small objects (the deadline
index alone holds two per case); a full collection scans them all (about 50-65 ms at a
million cases, bench/RESULTS.md; `metricsio.gc_tuning` freezes what a restore built out
of later collections), and a burst of firings allocates enough to set off several.
Pausing the collector while a burst's events are written keeps those pauses out of the
breach latency; reference counting still frees everything that is not in a cycle, and
the collector runs again as soon as the stretch ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable automatic garbage collection inside the block (if it was on), then restore it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
