"""An SLA policy and the one way due times are computed, for running clocks and for `explain`.

`due_at` = the calendar's `add(add(started_at, target), paused_total)`: the target counted
in open time from the start, pushed out by exactly the open time spent paused. `warn_at`
is the same with `warn_at` (a fraction) of the target's open time in place of the target.
Which clocks run, and from when, comes from the clock table (`schemas.SLA_CLOCKS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from rules._decision import CaseFacts
from rules.calendar import BusinessCalendar, Duration
from schemas import SLA_CLOCKS, CaseMoment, ClockDefinition, Priority

__all__ = ["SlaPolicy", "deadlines", "due_at", "due_times"]

_NO_TIME = timedelta(0)


@dataclass(frozen=True)
class SlaPolicy:
    """Clock targets per priority, counted in `calendar`'s open time."""

    name: str
    calendar_name: str | None
    calendar: BusinessCalendar
    targets: Mapping[Priority, Mapping[str, Duration]]
    warn_at: float = 0.75
    pause_when: frozenset[str] = frozenset()


def due_at(
    sla: SlaPolicy, started_at: datetime, target: Duration, paused_total: timedelta = _NO_TIME
) -> datetime:
    """When a clock run started at `started_at` with `target` falls due, after `paused_total`."""
    due = sla.calendar.add(started_at, target)
    return sla.calendar.add(due, paused_total) if paused_total else due


def deadlines(
    sla: SlaPolicy, started_at: datetime, target: Duration, paused_total: timedelta
) -> tuple[datetime, datetime]:
    """(`warn_at`, `due_at`) for a run started at `started_at` that has paused `paused_total`."""
    calendar = sla.calendar
    due = due_at(sla, started_at, target, paused_total)
    unpaused_due = due_at(sla, started_at, target) if paused_total else due
    target_open_time = calendar.elapsed(started_at, unpaused_due)
    # The share is whole seconds of open time (at or below it), counted from the exact start.
    warn_offset = timedelta(seconds=int(target_open_time.total_seconds() * sla.warn_at))
    base_warn = calendar.add(started_at, warn_offset)
    warn = min(calendar.add(base_warn, paused_total), due)
    return warn, due


def due_times(
    sla: SlaPolicy,
    priority: Priority,
    case: CaseFacts,
    at: datetime,
    clocks: tuple[ClockDefinition, ...] = SLA_CLOCKS,
) -> dict[str, datetime]:
    """Due time of each clock running for a message arriving at `at`, as the clock table says.

    The case opened `case.age` before `at`. Once an agent has replied, a clock that a
    customer writing after a reply starts runs from `at`, and a clock an agent reply meets
    is done; otherwise a clock that starts when the case opens runs from then. A case
    whose status pauses a clock has no due time for it.
    """
    targets = sla.targets.get(priority, {})
    paused = case.status in sla.pause_when
    replied = case.agent_replies > 0
    opened = at - case.age
    due: dict[str, datetime] = {}
    for clock in clocks:
        target = targets.get(clock.name)
        if target is None or (paused and clock.pauses):
            continue
        start = _run_start(clock, replied, opened, at)
        if start is not None:
            due[clock.name.value] = due_at(sla, start, target)
    return due


def _run_start(
    clock: ClockDefinition, replied: bool, opened: datetime, at: datetime
) -> datetime | None:
    if replied and CaseMoment.CUSTOMER_WRITES_AFTER_REPLY in clock.starts_on:
        return at
    if replied and CaseMoment.AGENT_REPLIED in clock.met_on:
        return None
    if CaseMoment.CASE_OPENED in clock.starts_on:
        return opened
    return None
