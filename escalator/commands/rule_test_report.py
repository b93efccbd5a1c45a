"""`escalator rules test`: run each test (a timeline through the worker's logic) and report it.

Plain tests are pure rule evaluations (`rules._rule_tests`); a test with a `timeline` runs
through stage C's own case logic (`streams.rule_timeline`). This is the composition root,
so it may use both.
"""

from __future__ import annotations

from typing import Any

from rules import CompiledRuleSet
from rules._rule_tests import PreparedTest, RuleTestResult, run_rule_tests
from streams.rule_timeline import StepResult, TimelineResult, run_timeline

TestOutcome = RuleTestResult | TimelineResult


def run_tests(ruleset: CompiledRuleSet, tests: list[PreparedTest]) -> list[TestOutcome]:
    """Run every test in order: a timeline test on a moving clock, the others as before."""
    outcomes: list[TestOutcome] = []
    for test in tests:
        if test.timeline:
            outcomes.append(run_timeline(ruleset, test))
        else:
            outcomes.extend(run_rule_tests(ruleset, [test]))
    return outcomes


def outcome_lines(outcome: TestOutcome) -> list[str]:
    """The human report of one test: a PASS/FAIL line, then what went wrong, step by step."""
    lines = [f"{'PASS' if outcome.passed else 'FAIL'} {outcome.name}  ({outcome.where})"]
    for diff in outcome.differences:
        lines.append(f"  {diff.key}: expected {show(diff.expected)}, got {show(diff.actual)}")
    if isinstance(outcome, TimelineResult):
        for step in outcome.steps:
            if not step.passed:
                lines.extend(_step_lines(step))
    return lines


def _step_lines(step: StepResult) -> list[str]:
    at = step.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"  step {step.number} at {step.written_at} ({at}, {step.where}):"]
    for diff in step.differences:
        if diff.key == "events":
            lines.append(
                f"    events: expected {show(diff.expected)}"
                f"{' in this order' if diff.expected else ' (nothing written)'}, "
                f"got {show(diff.actual)}"
            )
        else:
            lines.append(f"    {diff.key}: expected {show(diff.expected)}, got {show(diff.actual)}")
    if all(diff.key != "events" for diff in step.differences):
        lines.append(f"    events written: {show(list(step.events))}")
    lines.append(f"    clocks at {at}:")
    for name, clock in step.clocks.items():
        if name == "next_deadline":
            lines.append(f"      next deadline: {show(clock['at'])}")
        else:
            lines.append(
                f"      {name}: {clock['state']}, due {show(clock['due_at'])}, "
                f"warn {show(clock['warn_at'])}"
            )
    return lines


def outcome_json(outcome: TestOutcome) -> dict[str, Any]:
    """One test in `rules test --json`; a timeline test adds its message events and steps."""
    report: dict[str, Any] = {
        "name": outcome.name,
        "at": outcome.where,
        "passed": outcome.passed,
        "differences": [_diff_json(d) for d in outcome.differences],
        "decision": outcome.decision,
    }
    if isinstance(outcome, TimelineResult):
        report["message_events"] = list(outcome.message_events)
        report["steps"] = [_step_json(step) for step in outcome.steps]
    return report


def _step_json(step: StepResult) -> dict[str, Any]:
    return {
        "step": step.number,
        "at": step.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "written": step.written_at,
        "where": step.where,
        "passed": step.passed,
        "events": list(step.events),
        "expected_events": None if step.expected_events is None else list(step.expected_events),
        "differences": [_diff_json(d) for d in step.differences],
        "case": step.case,
        "clocks": step.clocks,
    }


def _diff_json(diff: Any) -> dict[str, Any]:
    return {"key": diff.key, "expected": diff.expected, "actual": diff.actual}


def show(value: Any) -> str:
    """A value as the report prints it: lists in brackets, None as `-`."""
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "-" if value is None else str(value)
