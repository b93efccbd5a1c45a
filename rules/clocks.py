"""SLA clocks and escalation as pure functions of a case's clock state, its policy and event time.

Every transition takes the current `CaseClocks`, the `ClockPolicy` and the event time `at`,
and returns the new `CaseClocks` with the `ClockEvent`s it caused, in time order. Before
applying an input, a transition emits whatever fell due strictly before `at` (so a reply at
the due instant is in time); afterwards it emits whatever falls due at `at`. Time never goes
back: an input stamped before `clocks.as_of` counts as happening at `as_of`. Times keep
their microseconds: a deadline is never rounded to an earlier instant.

The stream keeps one `CaseClocks` per case, calls `due(clocks, policy, at)` when
`next_deadline(clocks)` comes, and turns each event into a `cases.events` record whose id
derives from the case id and `event.discriminator`. See docs/sla.md for the semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rules._clock_runs import (
    ClockPolicy,
    meet_clock,
    pause_clock,
    resume_clock,
    retarget,
    to_utc,
)
from rules._clock_runs import start_clock as _start_clock
from rules._clock_state import (
    CLOCK_NAMES,
    CaseClocks,
    ClockEvent,
    ClockEventKind,
    EscalationAction,
    EscalationTimer,
    SlaClock,
    replace,
)
from rules._escalation import (
    advance,
    arm_unclaimed,
    next_deadline,
    stop_for_acknowledge,
    stop_for_claim,
    stop_for_clock,
)
from schemas import CaseMoment, CaseStatus, ClockState, Priority

__all__ = [
    "CLOCK_NAMES",
    "CaseClocks",
    "ClockEvent",
    "ClockEventKind",
    "ClockPolicy",
    "EscalationAction",
    "EscalationTimer",
    "SlaClock",
    "Transition",
    "acknowledged",
    "agent_reply",
    "claimed",
    "customer_message",
    "due",
    "next_deadline",
    "priority_changed",
    "released",
    "reopened",
    "resolved",
    "routed",
    "start",
    "status_changed",
]

Transition = tuple[CaseClocks, list[ClockEvent]]
"""What every transition returns: the new clock state and the events, in time order."""

_RESOLVED = CaseStatus.RESOLVED.value


def _started_on(policy: ClockPolicy, moment: CaseMoment) -> tuple[str, ...]:
    """The clocks the table starts on `moment`, in table order."""
    return policy.started_on(moment)


def _met_on(policy: ClockPolicy, moment: CaseMoment) -> tuple[str, ...]:
    """The clocks the table meets on `moment`, in table order."""
    return policy.met_on(moment)


def _apply(
    clocks: CaseClocks,
    policy: ClockPolicy,
    at: datetime,
    change: Callable[[CaseClocks, datetime], Transition],
) -> Transition:
    at = max(to_utc(at), clocks.as_of)
    clocks, before = advance(clocks, policy, at, inclusive=False)
    clocks, during = change(clocks, at)
    clocks, after = advance(clocks, policy, at, inclusive=True)
    return replace(clocks, as_of=at), before + during + after


def start(
    policy: ClockPolicy,
    priority: Priority,
    at: datetime,
    *,
    status: str = CaseStatus.NEW.value,
    routed: bool = True,
) -> Transition:
    """A case opens with its first customer message at `at`: start the clocks that opening starts.

    With `routed` (the default) the case counts as routed to a queue at `at`, so its
    `on: unclaimed` steps start counting.
    """
    at = to_utc(at)
    clocks = CaseClocks(
        policy=policy.sla.name,
        calendar=policy.sla.calendar_name,
        priority=priority,
        status=status,
        opened_at=at,
        as_of=at,
        escalation_policy=policy.escalation,
        rule=policy.rule,
        routed_at=at if routed else None,
    )
    events: list[ClockEvent] = []
    for name in _started_on(policy, CaseMoment.CASE_OPENED):
        clocks, started = _start_clock(clocks, policy, name, at)
        events += started
    clocks = arm_unclaimed(clocks, policy, at)
    clocks, fallen = advance(clocks, policy, at, inclusive=True)
    return clocks, events + fallen


def customer_message(clocks: CaseClocks, policy: ClockPolicy, at: datetime) -> Transition:
    """A customer message arrived: after an agent reply it starts `next_response`.

    While a response clock already waits for an answer (running, paused or breached) the
    message changes nothing: the clock runs from the first unanswered message. Messages
    on a resolved case change nothing here; the stream reopens the case first.
    """

    def change(case: CaseClocks, moment: datetime) -> Transition:
        if case.status == _RESOLVED or not case.agent_replied:
            return case, []
        events: list[ClockEvent] = []
        for name in _started_on(policy, CaseMoment.CUSTOMER_WRITES_AFTER_REPLY):
            current = case.clock(name)
            if current is not None and current.state != ClockState.MET:
                continue
            case, started = _start_clock(case, policy, name, moment)
            events += started
        return case, events

    return _apply(clocks, policy, at, change)


def agent_reply(clocks: CaseClocks, policy: ClockPolicy, at: datetime) -> Transition:
    """An agent replied: `first_response` and `next_response` are met (late, if breached)."""

    def change(case: CaseClocks, moment: datetime) -> Transition:
        events: list[ClockEvent] = []
        for name in _met_on(policy, CaseMoment.AGENT_REPLIED):
            clock = case.clock(name)
            if clock is None or clock.state == ClockState.MET:
                continue
            met, event = meet_clock(case, policy, clock, moment, "an agent replied")
            case = stop_for_clock(case.with_clock(met), met)
            events.append(event)
        return replace(case, agent_replied=True), events

    return _apply(clocks, policy, at, change)


def status_changed(
    clocks: CaseClocks, policy: ClockPolicy, status: str, at: datetime
) -> Transition:
    """The case status changed: entering a `pause_when` status pauses, leaving it resumes.

    Changing to `resolved` is `resolved`; leaving `resolved` is `reopened`.
    """
    if status == _RESOLVED and clocks.status != _RESOLVED:
        return resolved(clocks, policy, at)
    if clocks.status == _RESOLVED and status != _RESOLVED:
        return reopened(clocks, policy, at, status=status)

    def change(case: CaseClocks, moment: datetime) -> Transition:
        was_paused = case.status in policy.sla.pause_when
        pauses = status in policy.sla.pause_when
        case = replace(case, status=status)
        events: list[ClockEvent] = []
        for clock in case.clocks:
            if not policy.definition(clock.name).pauses:
                continue
            counting = clock.state in (ClockState.RUNNING, ClockState.WARNING)
            if pauses and not was_paused and counting:
                changed, event = pause_clock(case, clock, moment)
            elif was_paused and not pauses and clock.state == ClockState.PAUSED:
                changed, event = resume_clock(case, policy, clock, moment)
            else:
                continue
            case = case.with_clock(changed)
            events.append(event)
        return case, events

    return _apply(clocks, policy, at, change)


def resolved(clocks: CaseClocks, policy: ClockPolicy, at: datetime) -> Transition:
    """The case was resolved: `resolution` is met, the other clocks stop, every step stops."""
    goals = _met_on(policy, CaseMoment.CASE_RESOLVED)

    def change(case: CaseClocks, moment: datetime) -> Transition:
        case = replace(case, status=_RESOLVED, timers=())
        events: list[ClockEvent] = []
        for clock in case.clocks:
            if clock.state == ClockState.MET:
                continue
            why = "the case was resolved"
            if clock.name not in goals:
                why = "stopped because the case was resolved"
            met, event = meet_clock(case, policy, clock, moment, why)
            case = case.with_clock(met)
            events.append(event)
        return case, events

    return _apply(clocks, policy, at, change)


def reopened(
    clocks: CaseClocks, policy: ClockPolicy, at: datetime, *, status: str = CaseStatus.OPEN.value
) -> Transition:
    """A resolved case reopened: a fresh `resolution` run and a `next_response` run start at `at`.

    Both get their full target at the current priority (the customer is waiting again); an
    unclaimed case counts its `on: unclaimed` steps afresh. A case not resolved is unchanged.
    """

    def change(case: CaseClocks, moment: datetime) -> Transition:
        if case.status != _RESOLVED:
            return case, []
        case = replace(case, status=status)
        events: list[ClockEvent] = []
        for name in _started_on(policy, CaseMoment.CASE_REOPENED):
            case, started = _start_clock(case, policy, name, moment)
            events += started
        return arm_unclaimed(case, policy, moment), events

    return _apply(clocks, policy, at, change)


def priority_changed(
    clocks: CaseClocks, policy: ClockPolicy, priority: Priority, at: datetime
) -> Transition:
    """The case priority changed: every counting clock is re-targeted from its own start.

    The new target applies as if the case had had this priority from the clock's start,
    so a raise can make a warning or breach due at once (emitted by this call, stamped with
    its deadline). Breached and met clocks keep their history, a clock without a target at
    the new priority keeps its old one, and a clock that already warned does not warn again.
    """

    def change(case: CaseClocks, moment: datetime) -> Transition:
        return retarget(case, policy, priority, moment), []

    return _apply(clocks, policy, at, change)


def claimed(clocks: CaseClocks, policy: ClockPolicy, at: datetime) -> Transition:
    """An agent claimed the case: unclaimed steps and repeats of warning/breach steps stop."""

    def change(case: CaseClocks, moment: datetime) -> Transition:
        return stop_for_claim(replace(case, claimed=True, unclaimed_since=None)), []

    return _apply(clocks, policy, at, change)


def acknowledged(clocks: CaseClocks, policy: ClockPolicy, at: datetime) -> Transition:
    """Someone acknowledged the case's pages: `until: acknowledged` steps stop repeating."""

    def change(case: CaseClocks, moment: datetime) -> Transition:
        return stop_for_acknowledge(case), []

    return _apply(clocks, policy, at, change)


def released(clocks: CaseClocks, policy: ClockPolicy, at: datetime) -> Transition:
    """The agent released the case: `on: unclaimed` steps count afresh from `at`."""

    def change(case: CaseClocks, moment: datetime) -> Transition:
        if not case.claimed:
            return case, []
        return arm_unclaimed(replace(case, claimed=False), policy, moment), []

    return _apply(clocks, policy, at, change)


def routed(clocks: CaseClocks, policy: ClockPolicy, at: datetime) -> Transition:
    """An agent or rule moved the case to another queue: an unclaimed case counts afresh.

    Escalation steps that move the case do not call this, so their repeats keep counting.
    """

    def change(case: CaseClocks, moment: datetime) -> Transition:
        case = replace(case, routed_at=moment)
        if case.claimed:
            return case, []
        return arm_unclaimed(case, policy, moment), []

    return _apply(clocks, policy, at, change)


def due(clocks: CaseClocks, policy: ClockPolicy, at: datetime) -> Transition:
    """Emit everything due at or before `at`: warnings, breaches and escalation steps."""
    return _apply(clocks, policy, at, lambda case, moment: (case, []))
