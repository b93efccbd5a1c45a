"""One poller of the case store per desk process, fanning its changes out to every event stream.

Each `/v1/events` stream used to query the store itself every poll interval and write its
agent's heartbeat on its own: 500 open consoles made 2,000 queries a second while nothing
happened. Now one task per process (`ChangeFeed`) reads what was projected since its last
position and hands the same batch to every subscribed stream; each stream filters it with
its own position and filter. Heartbeats of every agent with an open stream are one write per
keep-alive interval.

A stream that starts from an older position (`Last-Event-ID`), or that fell so far behind
that its buffer overflowed, reads the store itself from its own position until it has caught
up (`Subscription.behind`), then goes on with the shared batches, skipping what it already
sent (offsets grow within a partition). So no stream misses an event, and no slow client
makes the others wait or the process hold an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence

from queues.desk.reads import ChangedEvent, DeskReads

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 500
"""Events one catch-up read of a stream returns at most."""

MAX_PENDING_BATCHES = 64
"""Batches a stream may have waiting before it is told to catch up from the store instead."""


class Subscription:
    """One stream's place in the feed: its own position and the batches waiting for it."""

    def __init__(self, agent: str, position: dict[int, int]) -> None:
        self.agent = agent
        self.position = dict(position)
        self.behind = True  # read the store from `position` once before trusting the batches
        self._batches: asyncio.Queue[Sequence[ChangedEvent]] = asyncio.Queue(MAX_PENDING_BATCHES)

    def offer(self, batch: Sequence[ChangedEvent]) -> None:
        """Queue a shared batch; when the stream is too far behind, drop them and let it read."""
        try:
            self._batches.put_nowait(batch)
        except asyncio.QueueFull:
            while not self._batches.empty():
                self._batches.get_nowait()
            self.behind = True
            self._batches.put_nowait(())  # wake the stream so it catches up now

    async def next_batch(self, timeout_seconds: float) -> Sequence[ChangedEvent] | None:
        """The next shared batch, or None when none came within the timeout."""
        try:
            return await asyncio.wait_for(self._batches.get(), timeout_seconds)
        except TimeoutError:
            return None

    def advance(self, event: ChangedEvent) -> bool:
        """True for an event past this stream's position (which then moves over it)."""
        if event.offset <= self.position.get(event.partition, -1):
            return False
        self.position[event.partition] = event.offset
        return True


class ChangeFeed:
    """The process's one store poller; runs while at least one stream is subscribed."""

    def __init__(
        self,
        reads: DeskReads,
        heartbeat: Callable[[Sequence[str]], None],
        poll_seconds: float,
        keepalive_seconds: float,
    ) -> None:
        self._reads = reads
        self._heartbeat = heartbeat
        self._poll_seconds = poll_seconds
        self._keepalive_seconds = keepalive_seconds
        self._subscribers: set[Subscription] = set()
        self._agents: Counter[str] = Counter()
        self._position: dict[int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        """How many streams are subscribed now."""
        return len(self._subscribers)

    def subscribe(self, agent: str, position: dict[int, int]) -> Subscription:
        """Register a stream starting after `position`; starts the poller if it is not running."""
        subscription = Subscription(agent, position)
        self._subscribers.add(subscription)
        self._agents[agent] += 1
        if self._task is None or self._task.done():
            self._position = None  # start from the store's end, not where it stopped hours ago
            self._task = asyncio.get_running_loop().create_task(self._run(), name="desk-feed")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a stream (its client left); the poller stops with the last one."""
        if subscription in self._subscribers:
            self._subscribers.discard(subscription)
            self._agents[subscription.agent] -= 1
            if self._agents[subscription.agent] <= 0:
                del self._agents[subscription.agent]

    async def catch_up(self, subscription: Subscription) -> AsyncIterator[ChangedEvent]:
        """The events a resumed or lagging stream missed, read from the store at its own
        position until it has reached the feed's (then `behind` is cleared)."""
        while True:
            if self._position is None:  # the feed's first read is not in yet
                await asyncio.sleep(self._poll_seconds)
                continue
            page = await asyncio.to_thread(
                self._reads.changes_after, dict(subscription.position), CATCH_UP_PAGE
            )
            for event in page:
                if subscription.advance(event):
                    yield event
            if len(page) < CATCH_UP_PAGE and self._reached(subscription):
                subscription.behind = False
                return

    def _reached(self, subscription: Subscription) -> bool:
        """Whether the stream has seen everything the feed has handed out so far."""
        position = self._position or {}
        return all(subscription.position.get(p, -1) >= o for p, o in position.items())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        beat_at = loop.time()
        while self._subscribers:
            try:
                changed = await self._poll()
                if loop.time() - beat_at >= self._keepalive_seconds and self._agents:
                    beat_at = loop.time()
                    await asyncio.to_thread(self._heartbeat, sorted(self._agents))
            except Exception:  # a store hiccup: the streams wait, the feed tries again
                log.exception("desk event feed: reading the case store failed")
                changed = []
            if not changed:
                await asyncio.sleep(self._poll_seconds)

    async def _poll(self) -> list[ChangedEvent]:
        """Read what was projected since the feed's position and hand it to every stream."""
        if self._position is None:
            self._position = await asyncio.to_thread(self._reads.end_cursor)
        changed = await asyncio.to_thread(self._reads.changes_after, dict(self._position))
        for event in changed:
            previous = self._position.get(event.partition, -1)
            self._position[event.partition] = max(previous, event.offset)
        if changed:
            for subscription in list(self._subscribers):
                subscription.offer(changed)
        return changed
