"""Run a rule test's timeline through the worker's own case logic, on the test's clock.

`rules/` parses a timeline (`rules._timeline_tests`) but may not run it: the clocks, the
escalation steps and the case logic that writes events are stage C's
(`streams.casework.apply_message` and `fire_clocks`, `streams.actions.apply_action` on a
`CaseState`). This module drives exactly those functions, firing deadlines with
`streams.simulation.fire_due` as backtests do, so a timeline test and the worker cannot
disagree.

At each step, in this order, as the worker would with its timer current:
1. every deadline due before the step's moment fires, each as of its own deadline;
2. the step's agent action, then its customer message, are applied at that moment (an
   action stamped at a deadline reaches the case before that deadline fires, which is
   what the worker's timer lateness is for);
3. every deadline due at the step's moment fires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rules import CompiledRuleSet
from rules._rule_tests import Difference, PreparedTest, compare_decision
from rules._timeline_tests import (
    CASE_UNDER_TEST,
    CUSTOMER_UNDER_TEST,
    PreparedStep,
    StepExpectation,
)
from schemas import CaseEvent, InboundMessage
from streams.actions import apply_action
from streams.case_state import CaseState
from streams.casework import CaseUpdate, apply_message
from streams.records import ThreadedMessage
from streams.simulation import fire_due


@dataclass(frozen=True)
class StepResult:
    """The outcome of one timeline step: what was written since the previous one, and checks."""

    number: int
    where: str
    written_at: str
    at: datetime
    events: tuple[str, ...]
    expected_events: tuple[str, ...] | None
    differences: tuple[Difference, ...]
    clocks: dict[str, dict[str, Any]]
    case: dict[str, Any]

    @property
    def passed(self) -> bool:
        """True when the events and the case met every expectation of the step."""
        return not self.differences


@dataclass(frozen=True)
class TimelineResult:
    """The outcome of a timeline test: the first message's decision and every step."""

    name: str
    where: str
    differences: tuple[Difference, ...]
    decision: dict[str, Any]
    message_events: tuple[str, ...]
    steps: tuple[StepResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        """True when the first decision and every step met their expectations."""
        return not self.differences and all(step.passed for step in self.steps)


def run_timeline(ruleset: CompiledRuleSet, test: PreparedTest) -> TimelineResult:
    """Open the test's case with its message, then play every step of its timeline."""
    first = _apply_message(None, test.message, test.at, ruleset)
    state = first.state
    decision = _decision(first.events)
    steps: list[StepResult] = []
    for step in test.timeline:
        state, written = _play(state, step, ruleset)
        steps.append(_check(step, state, written))
    return TimelineResult(
        name=test.name,
        where=test.where,
        differences=tuple(compare_decision(test.expect, decision)),
        decision=decision,
        message_events=tuple(event.type for event in first.events),
        steps=tuple(steps),
    )


def _play(
    state: CaseState, step: PreparedStep, ruleset: CompiledRuleSet
) -> tuple[CaseState, list[CaseEvent]]:
    written: list[CaseEvent] = []
    state = fire_due(state, ruleset, step.at, written, including=False)
    if step.action is not None:
        update = apply_action(state, step.action, ruleset)
        assert update is not None  # the case exists: the test's first message opened it
        state = update.state
        written += update.events
    if step.message is not None:
        update = _apply_message(state, step.message, step.at, ruleset)
        state = update.state
        written += update.events
    state = fire_due(state, ruleset, step.at, written, including=True)
    return state, written


def _apply_message(
    state: CaseState | None, message: InboundMessage, at: datetime, ruleset: CompiledRuleSet
) -> CaseUpdate:
    threaded = ThreadedMessage(
        case_id=state.case_id if state else CASE_UNDER_TEST,
        customer_id=CUSTOMER_UNDER_TEST,
        opens_case=state is None,
        evidence="rule test message",
        message=message,
        ingested_at=at,
    )
    return apply_message(state, threaded, ruleset)


def _decision(events: list[CaseEvent]) -> dict[str, Any]:
    """The rules' decision on the first message, as its `case.routed` event records it."""
    for event in events:
        decision = event.payload.get("decision")
        if event.type == "case.routed" and isinstance(decision, dict):
            return decision
    return {}


def _check(step: PreparedStep, state: CaseState, written: list[CaseEvent]) -> StepResult:
    kinds = tuple(event.type for event in written)
    differences: list[Difference] = []
    if step.expect_events is not None and not _in_order(step.expect_events, kinds):
        differences.append(Difference("events", list(step.expect_events), list(kinds)))
    case = case_facts(state)
    if step.expect is not None:
        differences += _compare_case(step.expect, case)
    return StepResult(
        number=step.number,
        where=step.where,
        written_at=step.written_at,
        at=step.at,
        events=kinds,
        expected_events=step.expect_events,
        differences=tuple(differences),
        clocks=_clocks(state),
        case=case,
    )


def _in_order(expected: tuple[str, ...], actual: tuple[str, ...]) -> bool:
    """`[]` means nothing was written; otherwise `expected` is a subsequence of `actual`."""
    if not expected:
        return not actual
    remaining = iter(actual)
    return all(kind in remaining for kind in expected)


def case_facts(state: CaseState) -> dict[str, Any]:
    """The case as a step's `expect` sees it (JSON values, times in UTC)."""
    return {
        "queue": state.queue,
        "priority": state.priority.value if state.priority else None,
        "tags": list(state.tags),
        "matched": list(state.matched),
        "sla_policy": state.sla_policy,
        "status": state.status.value,
        "assignee": state.claimed_by,
        "sla": {name: _utc(view.due_at) for name, view in state.sla.items()},
        "sla_state": {name: view.state.value for name, view in state.sla.items()},
    }


def _compare_case(expect: StepExpectation, case: dict[str, Any]) -> list[Difference]:
    differences: list[Difference] = []
    for key in ("queue", "priority", "sla_policy", "status", "assignee", "matched"):
        wanted = getattr(expect, key)
        if wanted is not None and wanted != case[key]:
            differences.append(Difference(key, wanted, case[key]))
    if expect.tags is not None and set(expect.tags) != set(case["tags"]):
        differences.append(Difference("tags", sorted(expect.tags), sorted(case["tags"])))
    for clock, due in (expect.sla or {}).items():
        wanted_text = _utc(due)
        actual = case["sla"].get(clock)
        if wanted_text != actual:
            differences.append(Difference(f"sla.{clock}", wanted_text, actual))
    for clock, clock_state in (expect.sla_state or {}).items():
        actual = case["sla_state"].get(clock)
        if clock_state.value != actual:
            differences.append(Difference(f"sla_state.{clock}", clock_state.value, actual))
    return differences


def _clocks(state: CaseState) -> dict[str, dict[str, Any]]:
    """Each clock's state, due and warning times, and the case's next deadline."""
    shown: dict[str, dict[str, Any]] = {
        name: {
            "state": view.state.value,
            "due_at": _utc(view.due_at),
            "warn_at": _utc(view.warn_at),
        }
        for name, view in state.sla.items()
    }
    shown["next_deadline"] = {"at": _utc(state.next_deadline)}
    return shown


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
