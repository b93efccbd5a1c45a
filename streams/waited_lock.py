"""An asyncio lock that says whether anyone is waiting for it.

Stage C and the SLA timer change cases under one lock. A burst of deadlines may take
seconds to fire; the timer holds the lock in short rounds and hands it over between them
whenever a stage C batch is waiting, so the timer never holds stage C's input for long.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class WaitedLock:
    """`asyncio.Lock` (first come, first served) that counts the tasks waiting to take it."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.waiting = 0
        """Tasks blocked in `async with` right now."""

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.release()

    def locked(self) -> bool:
        """True while some task holds the lock."""
        return self._lock.locked()
