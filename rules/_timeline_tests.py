"""The `timeline` of a rule test: steps on a moving clock, parsed and validated (no running).

A step moves the test's clock (`+30m` from the test's `at`, or an absolute time), may
apply an agent action or another customer message at that moment, and states what the
worker should have written since the previous step (`expect_events`) and how the case
should stand (`expect`). Running a timeline needs the worker's case logic, which lives
in `streams/` (`streams.rule_timeline`); this module only turns YAML into checked data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rules._durations import parse_duration
from rules._expectations import RoutingExpectation
from rules._problems import RuleProblem
from rules._validation_problems import problems_from_validation
from rules._yaml import Positions
from schemas import AgentAction, ClockState, InboundMessage

CASE_UNDER_TEST = "C-TESTCASE"
"""The case id a timeline test's case gets (and its agent actions name)."""

CUSTOMER_UNDER_TEST = "customer-under-test"
"""The customer id of a timeline test's case."""

AGENT_UNDER_TEST = "agent-under-test"
"""The agent of a step's action when it names none."""

_Model = TypeVar("_Model", bound=BaseModel)


class StepExpectation(RoutingExpectation):
    """How the case stands after a step; only the keys given are checked."""

    status: str | None = None
    assignee: str | None = Field(default=None, description="The agent who owns the case.")
    sla_state: dict[str, ClockState] | None = Field(
        default=None, description="State per clock: running, paused, warning, breached, met."
    )


class TimelineStepInput(BaseModel):
    """One step of a timeline as written in the tests file."""

    model_config = ConfigDict(extra="forbid")

    at: str | datetime = Field(description="`+30m` (from the test's `at`) or an absolute time.")
    action: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    expect_events: list[str] | None = None
    expect: StepExpectation | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _offset_or_time(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("+"):
            parse_duration(value.strip()[1:])  # raises ValueError with a usable message
            return value.strip()
        return value


@dataclass(frozen=True)
class PreparedStep:
    """A validated timeline step, ready to run."""

    number: int
    where: str
    written_at: str
    at: datetime
    action: AgentAction | None
    message: InboundMessage | None
    expect_events: tuple[str, ...] | None
    expect: StepExpectation | None


def prepare_timeline(
    steps: list[TimelineStepInput],
    raw_steps: list[Any],
    first: InboundMessage,
    start: datetime,
    test_index: int,
    file: str,
    positions: Positions,
    problems: list[RuleProblem],
) -> tuple[PreparedStep, ...]:
    """Resolve times, defaults, actions and messages of a test's steps; collect problems."""
    prepared: list[PreparedStep] = []
    previous = start
    for number, step in enumerate(steps, start=1):
        path = ("tests", test_index, "timeline", number - 1)
        line, col = positions.of_value(path)
        where = f"{file}:{line + 1}:{col + 1}"
        at = _moment(step.at, start)
        written = step.at if isinstance(step.at, str) else _iso(at)
        if at < previous:
            line, col = positions.of_value((*path, "at"))
            problems.append(
                RuleProblem(
                    file,
                    line + 1,
                    col + 1,
                    f"step {number} at {written} goes back in time (before {_iso(previous)})",
                )
            )
            continue
        previous = at
        raw = raw_steps[number - 1] if number - 1 < len(raw_steps) else {}
        action = _validated(
            AgentAction,
            _action_fields(step.action, at, test_index, number),
            raw.get("action", {}),
            file,
            positions.under((*path, "action")),
            problems,
        )
        message = _validated(
            InboundMessage,
            _message_fields(step.message, first, at, test_index, number),
            raw.get("message", {}),
            file,
            positions.under((*path, "message")),
            problems,
        )
        if (step.action is not None and action is None) or (
            step.message is not None and message is None
        ):
            continue
        prepared.append(
            PreparedStep(
                number=number,
                where=where,
                written_at=written,
                at=at,
                action=action if step.action is not None else None,
                message=message if step.message is not None else None,
                expect_events=None if step.expect_events is None else tuple(step.expect_events),
                expect=step.expect,
            )
        )
    return tuple(prepared)


def _moment(written: str | datetime, start: datetime) -> datetime:
    if isinstance(written, datetime):
        return written if written.tzinfo is not None else written.replace(tzinfo=UTC)
    if written.startswith("+"):
        return start + parse_duration(written[1:]).wall_clock()
    moment = datetime.fromisoformat(written.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _action_fields(
    action: dict[str, Any] | None, at: datetime, test_index: int, number: int
) -> dict[str, Any] | None:
    if action is None:
        return None
    return {
        "action_id": f"test-{test_index + 1}-step-{number}",
        "agent_id": AGENT_UNDER_TEST,
        **action,
        "case_id": CASE_UNDER_TEST,
        "at": at,
    }


def _message_fields(
    message: dict[str, Any] | None,
    first: InboundMessage,
    at: datetime,
    test_index: int,
    number: int,
) -> dict[str, Any] | None:
    if message is None:
        return None
    defaults: dict[str, Any] = {
        "channel": first.channel,
        "sender": first.sender,
        "text": "",
        "external_id": f"test-{test_index + 1}-step-{number}",
        "sent_at": at,
        "customer": first.customer.model_dump(mode="json", exclude_none=True),
    }
    return {**defaults, **message}


def _validated(
    model: type[_Model],
    fields: dict[str, Any] | None,
    raw: Any,
    file: str,
    positions: Positions,
    problems: list[RuleProblem],
) -> _Model | None:
    if fields is None:
        return None
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, raw, file, positions))
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def offset_text(at: datetime, start: datetime) -> str:
    """`+1h30m` for a step's time relative to the test's start (for reports)."""
    span: timedelta = at - start
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if v]
    return "+" + ("".join(parts) or "0s")
