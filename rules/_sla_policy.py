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
from rules._localtime import ONE_US, from_us, to_us
from rules.calendar import BusinessCalendar, Duration
from schemas import SLA_CLOCKS, CaseMoment, ClockDefinition, Priority

__all__ = ["SlaPolicy", "deadlines", "due_at", "due_times"]

_NO_TIME = timedelta(0)
_SECOND_US = 1_000_000


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
    calendar = sla.calendar
    due = calendar.add_us(to_us(started_at), target)
    return from_us(calendar.add_open_us(due, paused_total // ONE_US) if paused_total else due)


def deadlines(
    sla: SlaPolicy, started_at: datetime, target: Duration, paused_total: timedelta
) -> tuple[datetime, datetime]:
    """(`warn_at`, `due_at`) for a run started at `started_at` that has paused `paused_total`.

    `due_at` as `due_at` gives it; `warn_at` is the `warn_at` share of the open time from the
    start to the unpaused due time, in whole seconds (at or below it) counted from the exact
    start, pushed out by `paused_total` like the due time, and never after it. Computed on
    microseconds since the epoch, converted to datetimes once at the end.
    """
    calendar = sla.calendar
    start = to_us(started_at)
    unpaused_due = calendar.add_us(start, target)
    paused = paused_total // ONE_US
    due = calendar.add_open_us(unpaused_due, paused) if paused_total else unpaused_due
    target_open_time = calendar.elapsed_us(start, unpaused_due)
    # The share is whole seconds of open time (at or below it), counted from the exact start:
    # `timedelta.total_seconds()` is the microseconds divided by a million, as here.
    warn_offset = int(target_open_time / _SECOND_US * sla.warn_at) * _SECOND_US
    base_warn = calendar.add_open_us(start, warn_offset)
    warn = min(calendar.add_open_us(base_warn, paused), due)
    return from_us(warn), from_us(due)


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
