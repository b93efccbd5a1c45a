"""Where the SLA timer gets the time from: the wall clock in production, a fake one in tests.

Clock maths never reads a clock: every transition takes its event time as an argument, so
the same inputs give the same events. Only *when* the timer fires depends on a clock, and
that clock is injected: `WallClock` in the worker, `FakeClock` in tests and replays, which
moves only when told to and wakes the sleepers whose time has come.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FakeClock", "WallClock"]


class Clock(Protocol):
    """The time source of the SLA timer."""

    def now(self) -> datetime:
        """The current instant (UTC-aware)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""
        ...


class WallClock:
    """The real time, and asyncio's sleep: what the worker uses in production."""

    def now(self) -> datetime:
        """The system's current time in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that stands still until `advance` or `set` moves it; sleepers wake in order."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a FakeClock needs a timezone-aware start")
        self._now = start
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        """The instant the clock was last moved to."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been moved at least `seconds` forward from now."""
        wake_at = self._now + timedelta(seconds=max(0.0, seconds))
        if wake_at <= self._now:
            await asyncio.sleep(0)  # still a suspension point, as a real sleep(0) is
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (wake_at, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock."""
        return sum(1 for _at, _n, future in self._sleepers if not future.done())

    def advance(self, span: timedelta | float) -> None:
        """Move the clock forward by `span` (a timedelta or seconds) and wake who is due."""
        step = span if isinstance(span, timedelta) else timedelta(seconds=span)
        if step < timedelta(0):
            raise ValueError("a clock does not go back")
        self.set(self._now + step)

    def set(self, moment: datetime) -> None:
        """Move the clock forward to `moment` and wake every sleeper due by then."""
        if moment < self._now:
            raise ValueError("a clock does not go back")
        self._now = moment
        while self._sleepers and self._sleepers[0][0] <= moment:
            _at, _n, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
