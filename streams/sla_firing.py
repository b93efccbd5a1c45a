"""The SLA timer's side of stage C.

Fire due deadlines in slices, prepare upcoming ones, follow rebalances.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from rules import CompiledRuleSet
from streams import metrics
from streams.case_state import CaseState
from streams.case_writes import CaseWrites
from streams.casework import fire_clocks
from streams.gc_pause import gc_paused
from streams.output import OutputRecord
from streams.prepared import Firing
from streams.sla import add_counts, event_counts
from streams.state_store import EncodedState, PartitionNotHeldError

FIRE_SLICE = 20
"""Cases fired per slice: each slice is written while the next one is computed."""

ROUND_SECONDS = 0.004
"""Computing time after which a burst's round hands the case lock to a waiting batch.

A round also waits for its writes, then its states (a few milliseconds each on a healthy
broker), and its last slice may compute up to `FIRE_SLICE` times 0.2 ms beyond this: together
under 20 ms (bench/sla_timers.py measures the waits of a stage C batch during a burst).
"""


PREPARE_SLICE = 100
"""Cases prepared between two looks at the clock (a deadline that came goes first)."""


class SlaFiring(CaseWrites):
    """Firing cases' deadlines as of event time, on the partitions stage C holds."""

    async def fire_due(self, now: datetime) -> None:
        """SLA timer: run the clocks of every case whose next deadline is at or before `now`.

        Each case fires as of its deadline (event time), so when it fires does not change
        what it emits. Cases go earliest first in slices of `FIRE_SLICE`: a slice's events
        and queue records are written while the next slice is computed, so writing starts
        with the first slice, not after the last; the states follow in one write once the
        round's outputs are acknowledged (so they never hold up a later slice's events).
        The garbage collector waits until the events are acknowledged. Cases whose next
        deadline has also passed by then fire again in the same call.

        A burst fires in rounds, each holding the case lock: while a stage C batch waits
        for it, a round stops computing after `ROUND_SECONDS` and hands the lock over
        once its writes are acknowledged, so a burst of thousands of deadlines delays
        stage C's input by one round at a time, not by the whole burst.

        A partition fires only up to `fire_limit`: the event time stage C has reached on it.
        """
        if self.deadlines.next_deadline() is None:
            return
        while await self._fire_round(now):
            await asyncio.sleep(0)  # a stage C batch waiting for the lock takes it now

    async def _fire_round(self, now: datetime) -> int:
        """Fire due cases until none is due or a waiting stage C batch has waited a round.

        Returns how many cases it fired: cases remain due when it stopped for a batch, and
        a fired case whose next deadline has passed too is due again once saved.
        """
        async with self.case_lock:
            started = time.monotonic()
            ruleset = self.rules.current
            writes: list[asyncio.Future[None]] = []
            dirty: dict[bytes, tuple[int, EncodedState]] = {}
            fired = 0
            with gc_paused():  # no full collection between a deadline and its events
                while due := self.deadlines.pop_due_by(
                    lambda partition: self.fire_limit(partition, now), FIRE_SLICE
                ):
                    fired += len(due)
                    outputs, changed = self._fire_slice(due, ruleset)
                    dirty.update(changed)
                    writes.append(asyncio.ensure_future(self._fired(outputs, due)))
                    await asyncio.sleep(0)  # let acknowledgements of earlier slices in
                    if self.case_lock.waiting and time.monotonic() - started >= ROUND_SECONDS:
                        break
                await asyncio.gather(*writes)
            if dirty:
                await self._save_cases(dirty)
        return fired

    def fire_limit(self, partition: int, now: datetime) -> datetime | None:
        """Fire this partition's deadlines at or before this instant; None: none of them.

        `now` is the timer's time (the clock less the lateness). A partition not held, or
        revoked, fires nothing; with `event_time`, one still replaying fires no further than
        the records stage C has processed on it (see `streams.event_time`).
        """
        if not self.holds(partition):
            return None
        return now if self.event_time is None else self.event_time.limit(partition, now)

    def holds(self, partition: int) -> bool:
        """True when this partition is held and not revoked (whether or not it may fire yet)."""
        return partition not in self.revoked and partition in self.cases.partitions

    async def partitions_revoked(self, partitions: Iterable[int]) -> None:
        """Stop firing these partitions (a rebalance begins): waits for a burst in progress.

        Their prepared firings are dropped; their deadlines and states stay until the
        assignment says whether they come back (see `restore_state` in `build_app`).
        """
        gone = set(partitions)
        async with self.case_lock:
            self.revoked |= gone
            if self.event_time is not None:
                self.event_time.revoke(gone)
            self.prepared.drop_partitions(gone)

    def partitions_assigned(self, partitions: Iterable[int]) -> None:
        """These partitions are held again (their state restored): the timer may fire them."""
        self.revoked -= set(partitions)
        self.prepared.clear()

    async def prepare_upcoming(self, now: datetime) -> None:
        """Compute ahead the firings of cases due within `sla_prepare_seconds` of `now`.

        Reads held states without the case lock: a firing records the state it came from
        and is used only if that state is still the one held (see `streams.prepared`).
        Stops as soon as a deadline falls due, so firing always goes first.

        Every held partition is prepared, also one that may not fire yet (`fire_limit`):
        right after a restore or a rebalance stage C has not caught up on its inputs, and
        that time goes to the soonest deadlines, earliest first. A record the replay then
        applies to a case replaces its held state, so the firing prepared from the old one
        is not used.
        """
        if self.prepare_ahead <= timedelta(0):
            return
        self.prepared.keep_current(self.deadlines.deadline_of)
        ruleset = self.rules.current
        todo = [
            (partition, key, deadline)
            for partition, key, deadline in self.deadlines.upcoming(
                now + self.prepare_ahead, self.prepared.limit
            )
            if not self.prepared.ready(
                partition, key, self.cases.version(partition, key), ruleset.version, deadline
            )
        ]
        for start in range(0, len(todo), PREPARE_SLICE):
            for partition, key, deadline in todo[start : start + PREPARE_SLICE]:
                if self.prepared.full:
                    return
                if self.holds(partition):
                    firing = self._firing(partition, key, deadline, ruleset)
                    if firing is not None:
                        self.prepared.put(partition, key, firing)
            await asyncio.sleep(0)  # let stage C and acknowledgements in
            if self._fire_first(self.clock.now()):
                return

    def _fire_first(self, now: datetime) -> bool:
        """True when some partition has a deadline it may fire by `now`."""
        for partition in self.cases.partitions:
            upcoming = self.deadlines.partition_next(partition)
            if upcoming is not None and upcoming <= now:
                limit = self.fire_limit(partition, now)
                if limit is not None and upcoming <= limit:
                    return True
        return False

    def _firing(
        self, partition: int, key: bytes, deadline: datetime, ruleset: CompiledRuleSet
    ) -> Firing | None:
        """Fire one held case as of its deadline, into ready-to-write records."""
        version = self.cases.version(partition, key)
        if version is None:
            return None
        try:
            state = self.cases.load(partition, key, CaseState)
        except PartitionNotHeldError:  # revoked this instant (the assignment runs on a thread)
            return None
        assert state is not None
        update = fire_clocks(state, ruleset, deadline)
        if not update.changed:
            return Firing(version, ruleset.version, deadline)
        return Firing(
            version,
            ruleset.version,
            deadline,
            self._case_outputs(update),
            event_counts(update.events),
            self.cases.encode(update.state),
        )

    def _fire_slice(
        self, due: Sequence[tuple[int, bytes, datetime]], ruleset: CompiledRuleSet
    ) -> tuple[list[OutputRecord], dict[bytes, tuple[int, EncodedState]]]:
        dirty: dict[bytes, tuple[int, EncodedState]] = {}
        outputs: list[OutputRecord] = []
        for partition, key, deadline in due:
            if partition not in self.cases.partitions or partition in self.revoked:
                continue  # moved to another worker meanwhile
            version = self.cases.version(partition, key)
            firing = self.prepared.take(
                partition, key, version, ruleset.version, deadline
            ) or self._firing(partition, key, deadline, ruleset)
            if firing is None:
                continue
            if firing.state is None:  # nothing fell due after all (e.g. its policy was removed)
                self.deadlines.schedule(partition, key, None)  # stop timing it
                continue
            add_counts(firing.counts)
            dirty[key] = (partition, firing.state)
            outputs.extend(firing.outputs)
        return outputs, dirty

    async def _fired(
        self, outputs: list[OutputRecord], due: Sequence[tuple[int, bytes, datetime]]
    ) -> None:
        await self.writer.write(outputs)
        self._fired_out(due)

    def _fired_out(self, due: Sequence[tuple[int, bytes, datetime]]) -> None:
        """The events of these fired deadlines are acknowledged: observe how late they are."""
        written = self.clock.now()
        for _partition, _key, deadline in due:
            metrics.TIMER_LAG.observe(max(0.0, (written - deadline).total_seconds()))
