"""Deadlines falling due: warnings, breaches and escalation steps, in time order.

`advance` emits everything due up to an instant; `next_deadline` says when the next thing
falls due. Escalation delays and repeat intervals count open time of the SLA calendar.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from rules._clock_runs import ClockPolicy, describe, retarget, span_text
from rules._clock_state import (
    CaseClocks,
    ClockEvent,
    ClockEventKind,
    EscalationAction,
    EscalationTimer,
    SlaClock,
    iso,
    replace,
)
from rules._decision import PlannedEscalation
from rules._pages import PageRequest, level_for
from schemas import ClockState, Priority

__all__ = [
    "advance",
    "arm_unclaimed",
    "next_deadline",
    "stop_for_acknowledge",
    "stop_for_claim",
    "stop_for_clock",
]

_COUNTING = frozenset({ClockState.RUNNING, ClockState.WARNING})


def next_deadline(case: CaseClocks) -> datetime | None:
    """The earliest instant at which a warning, breach or escalation step falls due, if any.

    Of equal instants the first found counts (clocks, then timers), as `min` would pick it.
    """
    earliest: datetime | None = None
    for clock in case.clocks:
        if clock.state not in _COUNTING:
            continue
        due = clock.due_at
        moment = clock.warn_at if not clock.warned and clock.warn_at < due else due
        if earliest is None or moment < earliest:
            earliest = moment
    for timer in case.timers:
        if earliest is None or timer.next_at < earliest:
            earliest = timer.next_at
    return earliest


def advance(
    case: CaseClocks, policy: ClockPolicy, limit: datetime, *, inclusive: bool
) -> tuple[CaseClocks, list[ClockEvent]]:
    """Emit, in time order, everything due before `limit` (or at it, when `inclusive`)."""
    events: list[ClockEvent] = []
    while True:
        moment = next_deadline(case)
        if moment is None or moment > limit or (moment == limit and not inclusive):
            return case, events
        case = _fall_due(case, policy, moment, events)


def _fall_due(
    case: CaseClocks, policy: ClockPolicy, moment: datetime, events: list[ClockEvent]
) -> CaseClocks:
    for name in [clock.name for clock in case.clocks]:
        clock = case.clock(name)
        if clock is None or clock.state not in _COUNTING:
            continue
        if not clock.warned and clock.warn_at <= moment:
            case = _deadline_passed(case, policy, clock, events, "warning")
            clock = case.clock(name) or clock
        if clock.due_at <= moment:
            case = _deadline_passed(case, policy, clock, events, "breach")
    due_timers = sorted(
        (timer for timer in case.timers if timer.next_at <= moment),
        key=lambda timer: (timer.next_at, timer.index, timer.trigger),
    )
    for timer in due_timers:
        case = _fire(case, policy, timer, events)
    return case


def _deadline_passed(
    case: CaseClocks,
    policy: ClockPolicy,
    clock: SlaClock,
    events: list[ClockEvent],
    on: Literal["warning", "breach"],
) -> CaseClocks:
    """`clock` reached its warning (`on="warning"`) or due time: mark it, say so, arm the steps."""
    if on == "warning":
        kind, at = ClockEventKind.WARNING, clock.warn_at
        changed = replace(clock, state=ClockState.WARNING, warned=True)
        why = f"warning: {policy.sla.warn_at:.0%} of the target's open time used"
    else:
        kind, at = ClockEventKind.BREACHED, clock.due_at
        changed = replace(clock, state=ClockState.BREACHED, breached_at=clock.due_at)
        why = "breached: target passed without an answer"
    events.append(
        ClockEvent(
            kind=kind,
            clock=clock.name,
            at=at,
            reason=f"{why}; {describe(case, changed)}",
            discriminator=f"{clock.key}:{on}:{iso(at)}",
            due_at=clock.due_at,
        )
    )
    return _arm(case.with_clock(changed), policy, on, changed, at)


def _after(policy: ClockPolicy, moment: datetime, step: PlannedEscalation) -> datetime:
    if step.after is None:
        return moment
    return policy.sla.calendar.add(moment, step.after)


def _arm(
    case: CaseClocks, policy: ClockPolicy, on: str, clock: SlaClock, anchor: datetime
) -> CaseClocks:
    timers = list(case.timers)
    for index, step in enumerate(policy.steps):
        if step.on == on and step.clock in (None, clock.name):
            fire_at = _after(policy, anchor, step)
            timers.append(EscalationTimer(index, f"{on}:{clock.key}", anchor, fire_at, step))
    return replace(case, timers=tuple(timers))


def arm_unclaimed(case: CaseClocks, policy: ClockPolicy, at: datetime) -> CaseClocks:
    """Start counting `on: unclaimed` steps from `at` (routing, release or reopen)."""
    if case.claimed or case.routed_at is None or case.status == "resolved":
        return case
    runs = case.unclaimed_runs + 1
    timers = [timer for timer in case.timers if not timer.trigger.startswith("unclaimed")]
    for index, step in enumerate(policy.steps):
        if step.on == "unclaimed":
            timers.append(
                EscalationTimer(index, f"unclaimed#{runs}", at, _after(policy, at, step), step)
            )
    return replace(case, timers=tuple(timers), unclaimed_since=at, unclaimed_runs=runs)


def stop_for_claim(case: CaseClocks) -> CaseClocks:
    """A claim stops unclaimed steps and the repeats of warning and breach steps."""
    kept = tuple(timer for timer in case.timers if timer.clock_key is not None and timer.fired == 0)
    return replace(case, timers=kept)


def stop_for_clock(case: CaseClocks, clock: SlaClock) -> CaseClocks:
    """A met clock stops every step its warning or breach armed."""
    kept = tuple(timer for timer in case.timers if timer.clock_key != clock.key)
    return replace(case, timers=kept)


def stop_for_acknowledge(case: CaseClocks) -> CaseClocks:
    """An acknowledgement stops the repeats of every `until: acknowledged` step that has paged.

    A paging step armed but not yet fired still fires: it is a new page, not a repeat.
    """
    kept = tuple(
        timer
        for timer in case.timers
        if not (timer.step.until == "acknowledged" and timer.fired > 0)
    )
    return replace(case, timers=kept)


def _page(timer: EscalationTimer) -> PageRequest | None:
    """What this firing of a paging step pages: the chain's level for this page number."""
    step = timer.step
    if step.page is None or not step.page_levels:
        return None
    level = level_for(step.page_levels, timer.fired)
    return PageRequest(
        pager=step.page,
        run=f"{timer.trigger}/step{timer.index}",
        level=level,
        number=timer.fired + 1,
        targets=step.page_levels[level].targets,
        until=step.until,
    )


def _next_firing(case: CaseClocks, policy: ClockPolicy, timer: EscalationTimer) -> datetime | None:
    """When a fired step fires again, if it repeats.

    `until: acknowledged` repeats `every` (event time, not open time: on-call is paged at
    night too) up to `max_pages`; other steps repeat `after` (open time) `repeat` times.
    A claim ends both kinds of repeats of warning and breach steps.
    """
    step = timer.step
    fired = timer.fired + 1
    if timer.clock_key is not None and case.claimed:
        return None
    if step.until == "acknowledged" and step.every is not None:
        return timer.next_at + step.every if fired < step.max_pages else None
    if step.after is not None and fired <= step.repeat:
        return policy.sla.calendar.add(timer.next_at, step.after)
    return None


def _new_priority(case: CaseClocks, setting: str | None) -> Priority | None:
    if setting is None:
        return None
    if setting[0] in "+-":
        return case.priority.shifted(int(setting))
    return Priority(setting)


def _fire(
    case: CaseClocks, policy: ClockPolicy, timer: EscalationTimer, events: list[ClockEvent]
) -> CaseClocks:
    step = timer.step
    priority = _new_priority(case, step.priority)
    action = EscalationAction(
        step=timer.index,
        on=step.on,
        queue=step.queue,
        priority=priority,
        tags=step.tags,
        notify=step.notify,
        firing=timer.fired,
        repeat=step.repeat,
        page=_page(timer),
    )
    events.append(
        ClockEvent(
            kind=ClockEventKind.ESCALATED,
            clock=_clock_name(timer),
            at=timer.next_at,
            reason=_fire_reason(case, timer),
            discriminator=f"{timer.trigger}:step{timer.index}#{timer.fired}:{iso(timer.next_at)}",
            escalation=action,
        )
    )
    again = _next_firing(case, policy, timer)
    others = tuple(t for t in case.timers if t != timer)
    if again is not None:
        others = (*others, replace(timer, fired=timer.fired + 1, next_at=again))
    case = replace(case, timers=others)
    if priority is not None and priority != case.priority:
        case = retarget(case, policy, priority, timer.next_at)
    return case


def _clock_name(timer: EscalationTimer) -> str | None:
    key = timer.clock_key
    return None if key is None else key.partition("#")[0]


def _fire_reason(case: CaseClocks, timer: EscalationTimer) -> str:
    step = timer.step
    policy = f"escalation policy {case.escalation_policy!r}"
    which = f"step {timer.index + 1} of {policy} (on {step.on}"
    which += f" of {step.clock})" if step.clock else ")"
    count = f"firing {timer.fired + 1} of {step.repeat + 1}"
    if timer.clock_key is None:
        waited = timer.next_at - timer.anchor
        why = f"nobody has claimed the case since {iso(timer.anchor)} ({span_text(waited)})"
    else:
        clock = case.clock(_clock_name(timer) or "")
        detail = describe(case, clock) if clock is not None else timer.trigger
        why = f"{timer.trigger.partition(':')[0]} at {iso(timer.anchor)}: {detail}"
    every = span_text(step.after or timedelta(0))
    interval = f", every {every} of open time" if step.repeat else ""
    if step.until == "acknowledged" and step.every is not None:
        count = f"page {timer.fired + 1} of {step.page}"
        interval = f", every {span_text(step.every)} until acknowledged"
    return f"{which}, {count}{interval}: {why}"
