"""Worked SLA timelines: each test is a picture in docs/sla.md, checked to the second."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

import rules
from rules import clocks as sla
from schemas import ClockState, Priority

RULES = """
version: 1
calendars:
  office:
    timezone: UTC
    hours: {mon-fri: ["09:00-17:00"]}
sla:
  standard:
    calendar: office
    targets:
      urgent: {first_response: 30m, next_response: 1h, resolution: 8h}
      high:   {first_response: 2h,  next_response: 4h, resolution: 2d}
      normal: {first_response: 8h,  next_response: 8h, resolution: 5d}
      low:    {first_response: 2d}
    warn_at: 75%
    pause_when: [waiting_on_customer]
escalations:
  standard:
    - {on: warning, notify: [team-leads]}
    - {on: breach, queue: tier2, priority: +1}
    - {on: unclaimed, after: 15m, queue: duty-managers, repeat: 3}
queues: {general: {}, tier2: {}, duty-managers: {}}
routes: {queue: general, priority: normal, sla: standard, escalation: standard}
"""

RULESET = rules.compile_sources({"sla.yaml": RULES})
POLICY = sla.ClockPolicy.from_ruleset(RULESET, "standard", "standard", rule="(root)")
NO_STEPS = replace(POLICY, steps=())
CLOCK_STEPS = replace(POLICY, steps=tuple(s for s in POLICY.steps if s.on != "unclaimed"))
UNCLAIMED_ONLY = replace(POLICY, steps=tuple(s for s in POLICY.steps if s.on == "unclaimed"))


def utc(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """January 2027: the 4th is a Monday, the 8th a Friday, the 9th/10th a weekend."""
    return datetime(2027, 1, day, hour, minute, second, tzinfo=UTC)


def kinds(events: list[sla.ClockEvent]) -> list[tuple[str, str | None, datetime]]:
    """Events as (kind, clock, for-time) triples, easy to compare with a timeline."""
    return [(event.kind.value, event.clock, event.at) for event in events]


def test_first_response_breach_during_business_hours() -> None:
    # Mon 09:00 open (high: first_response 2h) -> warn 10:30 (75%) -> breach 11:00
    case, started = sla.start(CLOCK_STEPS, Priority.HIGH, utc(4, 9))
    assert kinds(started) == [
        ("sla.started", "first_response", utc(4, 9)),
        ("sla.started", "resolution", utc(4, 9)),
    ]
    first = case.clock("first_response")
    assert first is not None
    assert (first.warn_at, first.due_at) == (utc(4, 10, 30), utc(4, 11))
    assert sla.next_deadline(case) == utc(4, 10, 30)
    case, events = sla.due(case, CLOCK_STEPS, utc(4, 11))
    assert kinds(events) == [
        ("sla.warning", "first_response", utc(4, 10, 30)),
        ("case.escalated", "first_response", utc(4, 10, 30)),
        ("sla.breached", "first_response", utc(4, 11)),
        ("case.escalated", "first_response", utc(4, 11)),
    ]
    warning_step, breach_step = events[1].escalation, events[3].escalation
    assert warning_step is not None and warning_step.notify == ("team-leads",)
    assert breach_step is not None
    assert (breach_step.queue, breach_step.priority) == ("tier2", Priority.URGENT)
    assert case.priority is Priority.URGENT
    # The escalation raised the priority: resolution is now 8h from Mon 09:00.
    resolution = case.clock("resolution")
    assert resolution is not None and resolution.due_at == utc(4, 17)
    assert sla.next_deadline(case) == utc(4, 15)
    assert "calendar 'office'" in events[2].reason
    assert "target 2h" in events[2].reason
    assert "paused 0s" in events[2].reason
    assert "'standard'" in events[2].reason
    assert events[2].discriminator == "first_response#1:breach:2027-01-04T11:00:00Z"


def test_breach_spans_the_weekend() -> None:
    # Fri 16:00 (normal: 8h) = Fri 16-17 (1h) + Mon 09-16 (7h) -> due Mon 16:00, warn Mon 14:00
    case, _ = sla.start(NO_STEPS, Priority.NORMAL, utc(8, 16))
    first = case.clock("first_response")
    assert first is not None
    assert (first.warn_at, first.due_at) == (utc(11, 14), utc(11, 16))
    case, events = sla.due(case, NO_STEPS, utc(10, 23, 59))
    assert events == []
    assert sla.next_deadline(case) == utc(11, 14)
    case, events = sla.due(case, NO_STEPS, utc(11, 16))
    assert kinds(events) == [
        ("sla.warning", "first_response", utc(11, 14)),
        ("sla.breached", "first_response", utc(11, 16)),
    ]


def test_pause_delays_the_breach_by_exactly_the_paused_open_time() -> None:
    # Mon 09:00 open, high: due Mon 11:00. Waiting on customer Mon 09:30 .. Tue 10:00
    # = 7h30m Monday + 1h Tuesday of open time -> due Tue 11:30.
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    case, paused = sla.status_changed(case, NO_STEPS, "waiting_on_customer", utc(4, 9, 30))
    assert kinds(paused) == [
        ("sla.paused", "first_response", utc(4, 9, 30)),
        ("sla.paused", "resolution", utc(4, 9, 30)),
    ]
    assert sla.next_deadline(case) is None
    case, events = sla.due(case, NO_STEPS, utc(5, 9, 59))
    assert events == []
    case, resumed = sla.status_changed(case, NO_STEPS, "open", utc(5, 10))
    assert [event.kind.value for event in resumed] == ["sla.resumed", "sla.resumed"]
    first = case.clock("first_response")
    assert first is not None
    assert first.paused_total == timedelta(hours=8, minutes=30)
    assert first.due_at == utc(5, 11, 30)
    calendar = POLICY.sla.calendar
    assert calendar.elapsed(utc(4, 11), first.due_at) == first.paused_total
    assert "paused 8h30m in total" in resumed[0].reason
    case, events = sla.due(case, NO_STEPS, utc(5, 11, 30))
    assert kinds(events) == [
        ("sla.warning", "first_response", utc(5, 11)),
        ("sla.breached", "first_response", utc(5, 11, 30)),
    ]


def test_warning_at_75_percent_of_the_target() -> None:
    # urgent first_response 30m: warn at 22m30s, Mon 09:22:30
    case, _ = sla.start(NO_STEPS, Priority.URGENT, utc(4, 9))
    case, events = sla.due(case, NO_STEPS, utc(4, 9, 22, 29))
    assert events == []
    case, events = sla.due(case, NO_STEPS, utc(4, 9, 22, 30))
    assert kinds(events) == [("sla.warning", "first_response", utc(4, 9, 22, 30))]
    assert "75% of the target" in events[0].reason
    first = case.clock("first_response")
    assert first is not None and first.state is ClockState.WARNING


def test_warning_moves_out_with_a_pause_before_it() -> None:
    # urgent, paused 09:10 .. 09:20: warn 09:32:30, due 09:40
    case, _ = sla.start(NO_STEPS, Priority.URGENT, utc(4, 9))
    case, _ = sla.status_changed(case, NO_STEPS, "waiting_on_customer", utc(4, 9, 10))
    case, _ = sla.status_changed(case, NO_STEPS, "open", utc(4, 9, 20))
    first = case.clock("first_response")
    assert first is not None
    assert (first.warn_at, first.due_at) == (utc(4, 9, 32, 30), utc(4, 9, 40))


def test_reply_at_the_due_instant_is_in_time() -> None:
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    case, _ = sla.due(case, NO_STEPS, utc(4, 10, 59))
    case, events = sla.agent_reply(case, NO_STEPS, utc(4, 11))
    assert kinds(events) == [("sla.met", "first_response", utc(4, 11))]
    assert events[0].reason.startswith("met in time")


def test_late_reply_meets_a_breached_clock_and_says_how_late() -> None:
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    case, _ = sla.due(case, NO_STEPS, utc(4, 12))
    case, events = sla.agent_reply(case, NO_STEPS, utc(4, 12))
    assert events[0].reason.startswith("met 1h of open time late")
    first = case.clock("first_response")
    assert first is not None
    assert (first.state, first.breached_at, first.met_at) == (
        ClockState.MET,
        utc(4, 11),
        utc(4, 12),
    )


def test_priority_raised_mid_clock_retargets_from_the_start() -> None:
    # normal at Mon 09:00: due 17:00. Raised to high at 10:00: 2h from 09:00 -> due 11:00.
    case, _ = sla.start(NO_STEPS, Priority.NORMAL, utc(4, 9))
    case, events = sla.priority_changed(case, NO_STEPS, Priority.HIGH, utc(4, 10))
    assert events == []
    first = case.clock("first_response")
    assert first is not None
    assert (first.target, first.warn_at, first.due_at) == ("2h", utc(4, 10, 30), utc(4, 11))
    assert sla.next_deadline(case) == utc(4, 10, 30)


def test_priority_raised_past_the_new_target_breaches_at_once() -> None:
    # normal at 09:00, urgent at 10:00: 30m from 09:00 was due 09:30 -> emitted now.
    case, _ = sla.start(NO_STEPS, Priority.NORMAL, utc(4, 9))
    case, events = sla.priority_changed(case, NO_STEPS, Priority.URGENT, utc(4, 10))
    assert kinds(events) == [
        ("sla.warning", "first_response", utc(4, 9, 22, 30)),
        ("sla.breached", "first_response", utc(4, 9, 30)),
    ]
    deadline = sla.next_deadline(case)
    assert deadline is not None and deadline > utc(4, 10)


def test_priority_lowered_after_warning_does_not_warn_again() -> None:
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    case, _ = sla.due(case, NO_STEPS, utc(4, 10, 45))
    case, _ = sla.priority_changed(case, NO_STEPS, Priority.LOW, utc(4, 10, 45))
    first = case.clock("first_response")
    assert first is not None
    assert (first.state, first.due_at) == (ClockState.WARNING, utc(6, 9))
    # low has no resolution target: the resolution clock keeps its high target (2d).
    resolution = case.clock("resolution")
    assert resolution is not None and resolution.target == "2d"
    case, events = sla.due(case, NO_STEPS, utc(6, 9))
    assert kinds(events) == [
        ("sla.warning", "resolution", utc(5, 13)),  # 75% of 2d = 12h open
        ("sla.breached", "first_response", utc(6, 9)),
        ("sla.breached", "resolution", utc(6, 9)),
    ]


def test_next_response_runs_from_the_first_unanswered_message() -> None:
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    case, events = sla.customer_message(case, NO_STEPS, utc(4, 9, 5))
    assert events == []  # first_response still waits
    case, _ = sla.agent_reply(case, NO_STEPS, utc(4, 10))
    case, events = sla.customer_message(case, NO_STEPS, utc(4, 11))
    assert kinds(events) == [("sla.started", "next_response", utc(4, 11))]
    case, events = sla.customer_message(case, NO_STEPS, utc(4, 12))
    assert events == []
    following = case.clock("next_response")
    assert following is not None and following.due_at == utc(4, 15)
    case, events = sla.agent_reply(case, NO_STEPS, utc(4, 14))
    assert kinds(events) == [("sla.met", "next_response", utc(4, 14))]


def test_resolve_then_reopen_starts_fresh_resolution_and_next_response() -> None:
    # high: resolved Tue 10:00, reopened Wed 10:00 -> resolution#2 due Fri 10:00 (2d),
    # next_response#1 due Wed 14:00 (4h).
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    case, _ = sla.agent_reply(case, NO_STEPS, utc(4, 10))
    case, events = sla.resolved(case, NO_STEPS, utc(5, 10))
    assert kinds(events) == [("sla.met", "resolution", utc(5, 10))]
    assert sla.next_deadline(case) is None
    case, events = sla.reopened(case, NO_STEPS, utc(6, 10))
    assert kinds(events) == [
        ("sla.started", "next_response", utc(6, 10)),
        ("sla.started", "resolution", utc(6, 10)),
    ]
    resolution = case.clock("resolution")
    following = case.clock("next_response")
    assert resolution is not None and following is not None
    assert (resolution.run, resolution.due_at) == (2, utc(8, 10))
    assert following.due_at == utc(6, 14)
    assert events[1].discriminator == "resolution#2:start:2027-01-06T10:00:00Z"


def test_resolving_stops_the_response_clocks_and_every_step() -> None:
    case, _ = sla.start(POLICY, Priority.HIGH, utc(4, 9))
    case, events = sla.resolved(case, POLICY, utc(4, 9, 10))
    assert kinds(events) == [
        ("sla.met", "first_response", utc(4, 9, 10)),
        ("sla.met", "resolution", utc(4, 9, 10)),
    ]
    assert "stopped because the case was resolved" in events[0].reason
    assert case.timers == ()
    assert sla.next_deadline(case) is None


def test_status_resolved_and_back_are_resolve_and_reopen() -> None:
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    case, events = sla.status_changed(case, NO_STEPS, "resolved", utc(4, 10))
    assert case.status == "resolved" and len(events) == 2
    case, events = sla.status_changed(case, NO_STEPS, "pending", utc(4, 11))
    assert case.status == "pending"
    assert [event.clock for event in events] == ["next_response", "resolution"]


def test_a_clock_started_while_waiting_on_customer_starts_paused() -> None:
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    case, _ = sla.agent_reply(case, NO_STEPS, utc(4, 9, 30))
    case, _ = sla.status_changed(case, NO_STEPS, "waiting_on_customer", utc(4, 10))
    case, events = sla.customer_message(case, NO_STEPS, utc(4, 11))
    assert "paused (case is waiting_on_customer)" in events[0].reason
    case, _ = sla.status_changed(case, NO_STEPS, "open", utc(4, 12))
    following = case.clock("next_response")
    assert following is not None
    assert (following.paused_total, following.due_at) == (timedelta(hours=1), utc(4, 16))


def test_late_input_counts_at_the_latest_time_processed() -> None:
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    case, _ = sla.due(case, NO_STEPS, utc(4, 11))
    case, events = sla.agent_reply(case, NO_STEPS, utc(4, 10))
    assert kinds(events) == [("sla.met", "first_response", utc(4, 11))]


@pytest.mark.parametrize("moment", [utc(4, 9), utc(4, 9, 0, 1)])
def test_clocks_round_trip_through_json(moment: datetime) -> None:
    case, _ = sla.start(POLICY, Priority.HIGH, moment)
    case, _ = sla.status_changed(case, POLICY, "waiting_on_customer", utc(4, 9, 40))
    case, events = sla.due(case, POLICY, utc(4, 12))
    data = json.loads(json.dumps(case.to_dict()))
    assert sla.CaseClocks.from_dict(data) == case
    assert all(json.dumps(event.to_dict()) for event in events)


def test_sub_second_times_and_odd_warning_shares_keep_their_fractions() -> None:
    # A 50% share of 61s and a pause of 10.4s: deadlines keep the fractions of a second
    # (they used to be truncated to the second, which fired breaches up to 999 ms early).
    odd = replace(
        NO_STEPS,
        sla=replace(
            POLICY.sla,
            warn_at=0.5,
            targets={Priority.HIGH: {"first_response": rules.calendar.parse_duration("61s")}},
        ),
    )
    start = utc(4, 9) + timedelta(microseconds=700_000)
    case, _ = sla.start(odd, Priority.HIGH, start)
    case, _ = sla.status_changed(case, odd, "waiting_on_customer", start + timedelta(seconds=10))
    case, _ = sla.status_changed(case, odd, "open", start + timedelta(seconds=20.4))
    first = case.clock("first_response")
    assert first is not None
    assert first.started_at == start
    assert first.paused_total == timedelta(seconds=10.4)
    # the warning share is whole seconds of open time (30s), counted from the exact start
    assert (first.warn_at, first.due_at) == (
        start + timedelta(seconds=30 + 10.4),
        start + timedelta(seconds=61 + 10.4),
    )


def test_a_breach_never_fires_before_its_exact_deadline() -> None:
    # Opened at 09:00:00.700 with 2h: due 11:00:00.700, not 11:00:00.
    opened = utc(4, 9) + timedelta(milliseconds=700)
    case, _ = sla.start(NO_STEPS, Priority.HIGH, opened)
    assert sla.next_deadline(case) == opened + timedelta(hours=1, minutes=30)
    case, events = sla.due(case, NO_STEPS, utc(4, 11) + timedelta(milliseconds=500))
    assert [e.kind.value for e in events] == ["sla.warning"]  # no breach yet
    # the agent's reply in that last second is in time
    case, events = sla.agent_reply(case, NO_STEPS, utc(4, 11) + timedelta(milliseconds=600))
    [met] = [e for e in events if e.clock == "first_response"]
    assert met.kind.value == "sla.met" and met.reason.startswith("met in time")
    assert not [e for e in events if e.kind.value == "sla.breached"]


def test_an_input_in_the_same_second_after_the_deadline_sees_the_breach() -> None:
    opened = utc(4, 9) + timedelta(milliseconds=200)
    case, _ = sla.start(NO_STEPS, Priority.HIGH, opened)
    case, events = sla.agent_reply(case, NO_STEPS, opened + timedelta(hours=2, milliseconds=1))
    assert [(e.kind.value, e.at) for e in events if e.clock == "first_response"] == [
        ("sla.warning", opened + timedelta(hours=1, minutes=30)),
        ("sla.breached", opened + timedelta(hours=2)),
        ("sla.met", opened + timedelta(hours=2, milliseconds=1)),
    ]


def test_views_give_the_routed_case_sla_field() -> None:
    case, _ = sla.start(NO_STEPS, Priority.HIGH, utc(4, 9))
    views = case.views()
    assert list(views) == ["first_response", "resolution"]
    assert (views["first_response"].due_at, views["first_response"].state) == (
        utc(4, 11),
        ClockState.RUNNING,
    )
