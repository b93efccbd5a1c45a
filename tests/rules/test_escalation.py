"""Escalation steps: unclaimed steps and their repeats, warning/breach steps, what stops them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from rules import PlannedEscalation
from rules import clocks as sla
from schemas import Priority
from tests.rules.test_clocks import POLICY, UNCLAIMED_ONLY, kinds, utc

NOTIFY_ON_BREACH = replace(
    POLICY,
    steps=(
        PlannedEscalation(
            on="breach",
            clock="first_response",
            after=timedelta(minutes=30),
            notify=("duty-manager",),
            repeat=2,
        ),
        PlannedEscalation(on="warning", clock="resolution", tags=("resolution-at-risk",)),
    ),
)


def firings(events: list[sla.ClockEvent]) -> list[tuple[datetime, int]]:
    """(for-time, firing number) of each escalation event."""
    return [(event.at, event.escalation.firing) for event in events if event.escalation is not None]


def test_unclaimed_step_repeats_three_times() -> None:
    # routed Mon 09:00, nobody claims: 09:15, then 3 repeats 15m apart.
    case, _ = sla.start(UNCLAIMED_ONLY, Priority.NORMAL, utc(4, 9))
    case, events = sla.due(case, UNCLAIMED_ONLY, utc(4, 12))
    assert firings(events) == [
        (utc(4, 9, 15), 0),
        (utc(4, 9, 30), 1),
        (utc(4, 9, 45), 2),
        (utc(4, 10), 3),
    ]
    action = events[0].escalation
    assert action is not None
    assert (action.queue, action.repeat) == ("duty-managers", 3)
    assert "nobody has claimed the case since 2027-01-04T09:00:00Z (15m)" in events[0].reason
    assert "firing 1 of 4" in events[0].reason
    assert sla.next_deadline(case) is not None  # the clocks still run
    assert case.timers == ()


def test_claim_stops_the_unclaimed_repeats() -> None:
    case, _ = sla.start(UNCLAIMED_ONLY, Priority.NORMAL, utc(4, 9))
    case, before = sla.due(case, UNCLAIMED_ONLY, utc(4, 9, 45))
    case, during = sla.claimed(case, UNCLAIMED_ONLY, utc(4, 9, 50))
    case, after = sla.due(case, UNCLAIMED_ONLY, utc(4, 12))
    assert firings(before) == [(utc(4, 9, 15), 0), (utc(4, 9, 30), 1), (utc(4, 9, 45), 2)]
    assert firings(during + after) == []
    assert case.claimed


def test_release_counts_unclaimed_afresh() -> None:
    case, _ = sla.start(UNCLAIMED_ONLY, Priority.NORMAL, utc(4, 9))
    case, _ = sla.claimed(case, UNCLAIMED_ONLY, utc(4, 9, 5))
    case, _ = sla.released(case, UNCLAIMED_ONLY, utc(4, 10))
    case, events = sla.due(case, UNCLAIMED_ONLY, utc(4, 10, 20))
    assert firings(events) == [(utc(4, 10, 15), 0)]
    assert events[0].discriminator.startswith("unclaimed#2:")


def test_unclaimed_delay_counts_open_time() -> None:
    # routed Fri 16:50: 10m on Friday, 5m on Monday -> Mon 09:05
    case, _ = sla.start(UNCLAIMED_ONLY, Priority.NORMAL, utc(8, 16, 50))
    case, events = sla.due(case, UNCLAIMED_ONLY, utc(11, 9, 5))
    assert firings(events)[0] == (utc(11, 9, 5), 0)


def test_breach_step_waits_after_and_repeats_until_the_reply() -> None:
    # high: first_response due 11:00; step fires 11:30, 12:00; reply 12:10 stops 12:30.
    case, _ = sla.start(NOTIFY_ON_BREACH, Priority.HIGH, utc(4, 9))
    case, events = sla.due(case, NOTIFY_ON_BREACH, utc(4, 12))
    assert firings(events) == [(utc(4, 11, 30), 0), (utc(4, 12), 1)]
    case, events = sla.agent_reply(case, NOTIFY_ON_BREACH, utc(4, 12, 10))
    assert [event.kind.value for event in events] == ["sla.met"]
    case, events = sla.due(case, NOTIFY_ON_BREACH, utc(4, 13))
    assert firings(events) == []


def test_claim_stops_repeats_but_not_a_first_firing() -> None:
    case, _ = sla.start(NOTIFY_ON_BREACH, Priority.HIGH, utc(4, 9))
    case, _ = sla.due(case, NOTIFY_ON_BREACH, utc(4, 11))  # breached, step due 11:30
    case, _ = sla.claimed(case, NOTIFY_ON_BREACH, utc(4, 11, 10))
    case, events = sla.due(case, NOTIFY_ON_BREACH, utc(4, 13))
    assert firings(events) == [(utc(4, 11, 30), 0)]


def test_steps_for_a_named_clock_ignore_the_others() -> None:
    case, _ = sla.start(NOTIFY_ON_BREACH, Priority.HIGH, utc(4, 9))
    case, events = sla.due(case, NOTIFY_ON_BREACH, utc(4, 10, 59))
    assert firings(events) == []  # first_response warned, but only resolution's warning counts
    case, events = sla.due(case, NOTIFY_ON_BREACH, utc(5, 13))
    tagged = [event for event in events if event.escalation and event.escalation.tags]
    assert [(event.clock, event.at) for event in tagged] == [("resolution", utc(5, 13))]


def test_relative_priority_is_clamped_and_absolute_is_set() -> None:
    raise_two = replace(
        POLICY,
        steps=(
            PlannedEscalation(on="warning", priority="+2"),
            PlannedEscalation(on="breach", clock="first_response", priority="low"),
        ),
    )
    case, _ = sla.start(raise_two, Priority.HIGH, utc(4, 9))
    case, events = sla.due(case, raise_two, utc(4, 10, 30))
    raised = [event.escalation.priority for event in events if event.escalation]
    assert raised == [Priority.URGENT, Priority.LOW]
    # urgent: first_response 30m from 09:00 is long past -> breach now, then "low"
    assert kinds(events)[-2:] == [
        ("sla.breached", "first_response", utc(4, 9, 30)),
        ("case.escalated", "first_response", utc(4, 9, 30)),
    ]
    assert case.priority is Priority.LOW


def test_escalation_discriminators_are_unique() -> None:
    case, events = sla.start(POLICY, Priority.URGENT, utc(4, 9))
    case, more = sla.due(case, POLICY, utc(5, 17))
    ids = [event.discriminator for event in events + more]
    assert len(ids) == len(set(ids))


def test_a_case_not_yet_routed_counts_unclaimed_from_routing() -> None:
    case, _ = sla.start(UNCLAIMED_ONLY, Priority.NORMAL, utc(4, 9), routed=False)
    assert case.timers == ()
    case, _ = sla.routed(case, UNCLAIMED_ONLY, utc(4, 10))
    case, events = sla.due(case, UNCLAIMED_ONLY, utc(4, 10, 15))
    assert firings(events) == [(utc(4, 10, 15), 0)]
    case, _ = sla.claimed(case, UNCLAIMED_ONLY, utc(4, 10, 20))
    case, _ = sla.routed(case, UNCLAIMED_ONLY, utc(4, 11))  # claimed: nothing counts
    assert case.timers == ()
