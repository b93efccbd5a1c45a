"""The SLA timer loop: fire what is due, prepare what comes, sleep until the next deadline.

Sleeping until the earliest deadline fires it on time rather than up to a tick late; the
tick bounds the sleep so a deadline scheduled meanwhile is still found within
`tick_seconds`. The clock is injected (see `streams.clock`).

`fire` may leave a past deadline unfired: its partition is still being replayed by stage
C (see `streams.event_time`). The timer then looks again every `held_poll_seconds` rather
than spinning.

A deadline fires `lateness_seconds` after it passes, not at the very instant: an agent
action stamped just before the deadline (a claim, a reply) may still be on its way
through Kafka, and it must reach the case first, or a step it stops would fire anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from streams.clock import Clock

__all__ = ["HELD_POLL_SECONDS", "SlaTimer"]

HELD_POLL_SECONDS = 0.05
"""How often the timer looks again at a deadline held back by a partition's replay."""


class SlaTimer:
    """Calls `fire(until)` whenever deadlines may be due, sleeping on `clock` in between.

    `until` is the clock's time less the allowed lateness: fire what is due at or before it.
    With `prepare`, the time until the next deadline is used to call `prepare(now)`.
    """

    def __init__(
        self,
        fire: Callable[[datetime], Awaitable[None]],
        next_deadline: Callable[[], datetime | None],
        clock: Clock,
        tick_seconds: float = 0.2,
        *,
        prepare: Callable[[datetime], Awaitable[None]] | None = None,
        lateness_seconds: float = 0.0,
    ) -> None:
        self._fire = fire
        self._prepare = prepare
        self._next_deadline = next_deadline
        self._clock = clock
        self._tick = tick_seconds
        self._lateness = timedelta(seconds=lateness_seconds)

    async def step(self) -> float:
        """Fire what is due, then prepare what comes; return how long to sleep (seconds)."""
        until = self._clock.now() - self._lateness
        await self._fire(until)
        if self._prepare is not None:
            await self._prepare(self._clock.now())
        upcoming = self._next_deadline()
        if upcoming is None:
            return self._tick
        if upcoming <= until:  # due, yet not fired: held back until stage C gets there
            return min(self._tick, HELD_POLL_SECONDS)
        wait = (upcoming + self._lateness - self._clock.now()).total_seconds()
        return min(self._tick, max(0.0, wait))

    async def run(self) -> None:
        """Step and sleep, forever (until cancelled)."""
        while True:
            await self._clock.sleep(await self.step())
