"""Sliding-window counters for the desk's sign-in limits (per source address, per agent).

In memory, per desk process: each replica counts on its own, so N replicas let N times the
limit through, which still turns guessing at speed into guessing at a crawl. Bounded: past
`max_keys` keys the oldest are forgotten, so a flood of addresses cannot grow the process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindow:
    """At most `limit` hits per key within any `window_seconds`."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window_seconds:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until `key` may try again, or None if it may now."""
        with self._lock:
            now = self._clock()
            hits = self._recent(key, now)
            if hits is None or len(hits) < self.limit:
                return None
            return max(1, math.ceil(hits[0] + self.window_seconds - now))

    def hit(self, key: str) -> None:
        """Count one hit of `key` now."""
        with self._lock:
            now = self._clock()
            hits = self._recent(key, now)
            if hits is None:
                hits = self._hits[key] = deque(maxlen=self.limit)
            hits.append(now)
            self._hits.move_to_end(key)
            while len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
