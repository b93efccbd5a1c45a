"""Rule unit tests: messages with expected decisions, run against a compiled rule set.

In the spirit of `promtool test rules` and `amtool config routes test`: each case
gives a (partial) message, optional case facts and arrival time, and only the
expectations it cares about. Pure: the caller reads the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rules._case_input import CaseFactsInput
from rules._decision import CaseFacts
from rules._expectations import RoutingExpectation
from rules._problems import RuleProblem, RuleSetError
from rules._ruleset import CompiledRuleSet
from rules._timeline_tests import PreparedStep, TimelineStepInput, prepare_timeline
from rules._validation_problems import problems_from_validation
from rules._yaml import Positions, YamlSyntaxError, load_yaml
from schemas import InboundMessage

DEFAULT_AT = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
"""Arrival time of a test without `at` or `message.sent_at`: Monday 4 January 2027, 09:00 UTC."""

MESSAGE_DEFAULTS: dict[str, Any] = {
    "channel": "email",
    "sender": "customer@example.com",
    "text": "",
}


class Expectation(RoutingExpectation):
    """What a test expects of a decision; only the keys given are checked."""

    calendar: str | None = None
    escalation_policy: str | None = None
    acknowledgement: str | None = None


class RuleTestCase(BaseModel):
    """One rule test: a message, optional case facts and clock, and the expected decision."""

    model_config = ConfigDict(extra="forbid")

    name: str
    message: dict[str, Any] = {}
    case: CaseFactsInput | None = None
    at: datetime | None = None
    expect: Expectation | None = None
    timeline: list[TimelineStepInput] | None = Field(
        default=None, description="Steps on a moving clock (see docs/rules.md)."
    )

    @model_validator(mode="after")
    def _expects_something(self) -> RuleTestCase:
        if self.expect is None and not self.timeline:
            raise ValueError("a test needs `expect` (or a `timeline`)")
        if self.timeline and self.case is not None:
            raise ValueError(
                "a timeline test builds its case from its own messages: drop `case` "
                "(write the earlier messages as steps instead)"
            )
        return self


class RuleTestFile(BaseModel):
    """A file of rule tests."""

    model_config = ConfigDict(extra="forbid")

    tests: list[RuleTestCase]


@dataclass(frozen=True)
class Difference:
    """One expectation that did not hold."""

    key: str
    expected: Any
    actual: Any


@dataclass(frozen=True)
class RuleTestResult:
    """The outcome of one rule test."""

    name: str
    where: str
    differences: tuple[Difference, ...] = ()
    decision: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.differences


@dataclass(frozen=True)
class PreparedTest:
    """A validated test case, ready to run."""

    name: str
    where: str
    message: InboundMessage
    case: CaseFacts | None
    at: datetime
    expect: Expectation
    timeline: tuple[PreparedStep, ...] = ()


def load_rule_tests(file: str, text: str) -> list[PreparedTest]:
    """Read a tests file; raises `RuleSetError` with positioned problems if it is invalid."""
    try:
        data, positions = load_yaml(text)
    except YamlSyntaxError as problem:
        raise RuleSetError(
            [RuleProblem(file, problem.line + 1, problem.col + 1, problem.message)]
        ) from None
    try:
        parsed = RuleTestFile.model_validate(data)
    except ValidationError as exc:
        raise RuleSetError(problems_from_validation(exc, data, file, positions)) from None
    prepared: list[PreparedTest] = []
    problems: list[RuleProblem] = []
    for index, test in enumerate(parsed.tests):
        line, col = positions.of_value(("tests", index))
        where = f"{file}:{line + 1}:{col + 1}"
        raw_message = data["tests"][index].get("message", {})
        message = _message(test, index, raw_message, file, positions, problems)
        if message is None:
            continue
        at = test.at or message.sent_at
        case = test.case.to_facts(message.channel) if test.case else None
        timeline: tuple[PreparedStep, ...] = ()
        if test.timeline:
            raw_steps = data["tests"][index].get("timeline") or []
            timeline = prepare_timeline(
                test.timeline, raw_steps, message, _aware(at), index, file, positions, problems
            )
        expect = test.expect or Expectation()
        prepared.append(PreparedTest(test.name, where, message, case, _aware(at), expect, timeline))
    if problems:
        raise RuleSetError(problems)
    return prepared


def _message(
    test: RuleTestCase,
    index: int,
    raw: Any,
    file: str,
    positions: Positions,
    problems: list[RuleProblem],
) -> InboundMessage | None:
    fields = {**MESSAGE_DEFAULTS, "external_id": f"test-{index + 1}", **test.message}
    fields.setdefault("sent_at", test.at or DEFAULT_AT)
    if isinstance(fields["sent_at"], datetime):
        fields["sent_at"] = _aware(fields["sent_at"])
    try:
        return InboundMessage.model_validate(fields)
    except ValidationError as exc:
        prefix = ("tests", index, "message")
        problems.extend(problems_from_validation(exc, raw, file, positions.under(prefix)))
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def run_rule_tests(ruleset: CompiledRuleSet, tests: list[PreparedTest]) -> list[RuleTestResult]:
    """Evaluate every test against `ruleset` and compare with its expectations."""
    results = []
    for test in tests:
        decision = ruleset.evaluate(test.message, test.case, test.at).to_json()
        results.append(
            RuleTestResult(test.name, test.where, tuple(_compare(test.expect, decision)), decision)
        )
    return results


def compare_decision(expect: Expectation, decision: dict[str, Any]) -> list[Difference]:
    """The expectations a decision (`Decision.to_json()`) does not meet."""
    return _compare(expect, decision)


def _compare(expect: Expectation, decision: dict[str, Any]) -> list[Difference]:
    differences: list[Difference] = []
    keys = ("queue", "priority", "sla_policy", "calendar", "escalation_policy", "matched")
    for key in (*keys, "acknowledgement"):
        wanted = getattr(expect, key)
        if wanted is not None and wanted != decision.get(key):
            differences.append(Difference(key, wanted, decision.get(key)))
    if expect.tags is not None and set(expect.tags) != set(decision["tags"]):
        differences.append(Difference("tags", sorted(expect.tags), sorted(decision["tags"])))
    for clock, due in (expect.sla or {}).items():
        actual = decision["sla"].get(clock, {}).get("due_at")
        wanted_text = _aware(due).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if due else None
        if wanted_text != actual:
            differences.append(Difference(f"sla.{clock}", wanted_text, actual))
    return differences
