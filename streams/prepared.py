"""Firings computed ahead of their deadline, so that at the deadline only the writes remain.

A deadline is known as soon as it is scheduled, and firing a case as of its deadline is a
pure function of (held state, rule set, deadline). The timer therefore computes, while it
would otherwise sleep, what the cases due within the next minute will emit, and keeps the
ready records. At the deadline a prepared firing is used only if the case's held state is
still the very same object, the rule set the same version and the deadline the same;
anything else (a message, an agent action, a rule reload, a rebalance) makes the timer
compute the firing afresh, with the same result it would have had anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from streams.output import OutputRecord
from streams.sla import EventCount
from streams.state_store import EncodedState

__all__ = ["Firing", "PreparedFirings"]


@dataclass(frozen=True)
class Firing:
    """What firing one case as of one deadline produces."""

    version: bytes
    """The held state it was computed from (compared by identity)."""
    rules_version: str
    deadline: datetime
    outputs: list[OutputRecord] = field(default_factory=list)
    counts: tuple[EventCount, ...] = ()
    """The metrics its events add once written (`streams.sla.event_counts`); not the events
    themselves, whose payloads (the case snapshot) would cost many KB per prepared firing."""
    state: EncodedState | None = None
    """The state to save; None when nothing fell due (the case stops being timed)."""


class PreparedFirings:
    """Prepared firings by `(partition, key)`, at most `limit` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        """How many firings were taken ready (a count for tests and benchmarks)."""
        self._firings: dict[tuple[int, bytes], Firing] = {}

    def __len__(self) -> int:
        return len(self._firings)

    @property
    def full(self) -> bool:
        """True when no more firings may be kept."""
        return len(self._firings) >= self.limit

    def put(self, partition: int, key: bytes, firing: Firing) -> None:
        """Keep a firing (replacing an older one of the case), unless full."""
        if (partition, key) in self._firings or not self.full:
            self._firings[(partition, key)] = firing

    def ready(
        self, partition: int, key: bytes, version: bytes | None, rules: str, deadline: datetime
    ) -> bool:
        """True when a firing for exactly this state, rule set and deadline is kept."""
        firing = self._firings.get((partition, key))
        return firing is not None and self.ready_firing(firing, version, rules, deadline)

    def take(
        self, partition: int, key: bytes, version: bytes | None, rules: str, deadline: datetime
    ) -> Firing | None:
        """Remove the case's firing; return it if it is for this state, rules and deadline."""
        firing = self._firings.pop((partition, key), None)
        if firing is None or not self.ready_firing(firing, version, rules, deadline):
            return None
        self.used += 1
        return firing

    @staticmethod
    def ready_firing(firing: Firing, version: bytes | None, rules: str, deadline: datetime) -> bool:
        """True when `firing` is for exactly this state, rule set and deadline."""
        return (
            firing.version is version
            and firing.rules_version == rules
            and firing.deadline == deadline
        )

    def keep_current(self, deadline_of: Callable[[int, bytes], datetime | None]) -> None:
        """Forget firings whose case is no longer scheduled for their deadline."""
        stale = [
            (partition, key)
            for (partition, key), firing in self._firings.items()
            if deadline_of(partition, key) != firing.deadline
        ]
        for pk in stale:
            del self._firings[pk]

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget the firings of these partitions (revoked)."""
        for pk in [pk for pk in self._firings if pk[0] in partitions]:
            del self._firings[pk]

    def clear(self) -> None:
        """Forget everything (after a rebalance)."""
        self._firings.clear()
