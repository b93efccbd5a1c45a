"""Hypothesis stateful test of the SLA engine over random sequences of case activity and time.

Invariants: due_at never before started_at; a met clock never warns or breaches after; no
discriminator twice; paused_total is the calendar's open time spent in pause statuses;
next_deadline is in the future and `due(next_deadline)` emits; JSON round-trips; and a
replay of the same inputs gives identical events and state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import rules
from rules import clocks as sla
from schemas import CaseStatus, ClockState, Priority
from tests.rules.test_clocks import POLICY

BERLIN_RULES = """
version: 1
calendars:
  berlin:
    timezone: Europe/Berlin
    hours: {mon-fri: ["08:00-12:00", "13:00-18:00"], sat: ["10:00-14:00"]}
    holidays: ["2027-03-26", "2027-03-29"]
sla:
  tight:
    calendar: berlin
    targets:
      urgent: {first_response: 10m, next_response: 20m, resolution: 2h}
      high:   {first_response: 1h, next_response: 1h, resolution: 1d}
      normal: {first_response: 4h, resolution: 2d}
      low:    {next_response: 1d}
    warn_at: 50%
    pause_when: [waiting_on_customer, pending]
escalations:
  loud:
    - {on: warning, clock: first_response, after: 5m, repeat: 2, notify: [leads]}
    - {on: breach, priority: urgent, tags: [breached], after: 30m, repeat: 1}
    - {on: unclaimed, after: 10m, queue: duty, priority: "+1", repeat: 3}
queues: {general: {}, duty: {}}
routes: {queue: general, priority: normal, sla: tight, escalation: loud}
"""

BERLIN = sla.ClockPolicy.from_ruleset(
    rules.compile_sources({"berlin.yaml": BERLIN_RULES}), "tight", "loud", rule="(root)"
)
POLICIES = (POLICY, BERLIN)
# Berlin leaves summer time on 2027-03-28; the week around it has two holidays.
BASE = datetime(2027, 3, 22, tzinfo=UTC)
STATUSES = [status.value for status in CaseStatus]

steps = st.one_of(
    st.integers(0, 90).map(lambda m: timedelta(minutes=m)),
    st.integers(0, 3600).map(lambda s: timedelta(seconds=s)),
    st.integers(1, 72).map(lambda h: timedelta(hours=h)),
    st.integers(0, 10**8).map(lambda us: timedelta(microseconds=us)),
)

Input = tuple[str, tuple[Any, ...]]


def apply(
    case: sla.CaseClocks | None, policy: sla.ClockPolicy, item: Input
) -> tuple[sla.CaseClocks, list[sla.ClockEvent]]:
    """Feed one recorded input to the engine."""
    name, args = item
    if name == "start":
        return sla.start(policy, *args)
    assert case is not None
    function: Callable[..., sla.Transition] = getattr(sla, name)
    return function(case, policy, *args)


class ClockMachine(RuleBasedStateMachine):
    """One case under one policy, driven by customers, agents and the passing of time."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = POLICY
        self.case: sla.CaseClocks | None = None
        self.now = BASE
        self.inputs: list[Input] = []
        self.events: list[sla.ClockEvent] = []
        self.seen: set[str] = set()
        self.met: set[str] = set()
        self.statuses: list[tuple[datetime, str]] = []
        self.fresh: list[sla.ClockEvent] = []

    # -- driving ---------------------------------------------------------------------

    def feed(self, name: str, *args: Any) -> None:
        item = (name, args)
        self.inputs.append(item)
        self.case, self.fresh = apply(self.case, self.policy, item)
        self.events += self.fresh
        assert self.case is not None
        if not self.statuses or self.statuses[-1][1] != self.case.status:
            self.statuses.append((self.case.as_of, self.case.status))
        for event in self.fresh:
            assert event.discriminator not in self.seen, event.discriminator
            self.seen.add(event.discriminator)
            key = event.discriminator.split(":")[0]
            if event.kind in (sla.ClockEventKind.WARNING, sla.ClockEventKind.BREACHED):
                assert key not in self.met, f"{event.kind} after met: {event.discriminator}"
            if event.kind is sla.ClockEventKind.MET:
                self.met.add(key)

    @initialize(
        policy=st.sampled_from(POLICIES),
        offset=st.integers(0, 7 * 24 * 60),
        priority=st.sampled_from(list(Priority)),
    )
    def open_case(self, policy: sla.ClockPolicy, offset: int, priority: Priority) -> None:
        self.policy = policy
        self.now = BASE + timedelta(minutes=offset)
        self.feed("start", priority, self.now)

    @rule(step=steps)
    def tick(self, step: timedelta) -> None:
        self.now += step
        self.feed("due", self.now)

    @rule(step=steps)
    def time_passes_quietly(self, step: timedelta) -> None:
        self.now += step

    @rule()
    def customer_writes(self) -> None:
        self.feed("customer_message", self.now)

    @rule()
    def agent_replies(self) -> None:
        self.feed("agent_reply", self.now)

    @rule(status=st.sampled_from(STATUSES))
    def status_changes(self, status: str) -> None:
        self.feed("status_changed", status, self.now)

    @rule()
    def agent_claims(self) -> None:
        self.feed("claimed", self.now)

    @rule()
    def agent_releases(self) -> None:
        self.feed("released", self.now)

    @rule()
    def agent_resolves(self) -> None:
        self.feed("resolved", self.now)

    @rule()
    def case_reopens(self) -> None:
        self.feed("reopened", self.now)

    @rule(priority=st.sampled_from(list(Priority)))
    def priority_changes(self, priority: Priority) -> None:
        self.feed("priority_changed", priority, self.now)

    # -- invariants ------------------------------------------------------------------

    @precondition(lambda self: self.case is not None)
    @invariant()
    def deadlines_are_ordered(self) -> None:
        assert self.case is not None
        for clock in self.case.clocks:
            assert clock.started_at <= clock.warn_at <= clock.due_at
            if clock.state is ClockState.BREACHED:
                assert clock.breached_at == clock.due_at

    def pauses(self) -> tuple[list[tuple[datetime, datetime]], datetime | None]:
        """Closed intervals the case spent in pause statuses, and the start of the open one."""
        pausing = self.policy.sla.pause_when
        closed: list[tuple[datetime, datetime]] = []
        since: datetime | None = None
        for moment, status in self.statuses:
            if status in pausing and since is None:
                since = moment
            elif status not in pausing and since is not None:
                closed.append((since, moment))
                since = None
        return closed, since

    @precondition(lambda self: self.case is not None)
    @invariant()
    def paused_total_is_open_time_in_pause_statuses(self) -> None:
        assert self.case is not None
        calendar = self.policy.sla.calendar
        closed, since = self.pauses()
        for clock in self.case.clocks:
            if not clock.active:
                continue
            start = clock.started_at
            expected = sum(
                (calendar.elapsed(max(begin, start), end) for begin, end in closed if end > start),
                timedelta(0),
            )
            assert clock.paused_total == expected, (clock, self.statuses)
            assert clock.paused_since == (None if since is None else max(since, start))

    @precondition(lambda self: self.case is not None)
    @invariant()
    def next_deadline_is_ahead_and_emits(self) -> None:
        assert self.case is not None
        deadline = sla.next_deadline(self.case)
        if deadline is None:
            return
        assert deadline > self.case.as_of
        _, events = sla.due(self.case, self.policy, deadline)
        assert any(event.at == deadline for event in events), (deadline, events)

    @precondition(lambda self: self.case is not None)
    @invariant()
    def state_round_trips_through_json(self) -> None:
        assert self.case is not None
        assert sla.CaseClocks.from_dict(self.case.to_dict()) == self.case

    def teardown(self) -> None:
        case: sla.CaseClocks | None = None
        replayed: list[sla.ClockEvent] = []
        for item in self.inputs:
            case, events = apply(case, self.policy, item)
            replayed += events
        assert replayed == self.events
        assert case == self.case


ClockMachine.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestClockMachine = ClockMachine.TestCase
