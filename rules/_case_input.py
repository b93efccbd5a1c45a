"""Case facts written by hand (CASE.json for `rules explain`, `case:` in rule tests)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from rules._decision import CaseFacts, CustomerHistory
from rules.calendar import parse_duration
from schemas import Priority


def wall_clock(value: object) -> timedelta:
    """A span of wall-clock time: seconds as a number, or a duration such as `4h` (`1d` = 24h)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a span of time cannot be negative")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 4h or a number of seconds, not {value!r}")
    duration = parse_duration(value)
    return duration.wall_clock()


Span = Annotated[
    timedelta,
    BeforeValidator(wall_clock),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}]}),
]


class HistoryInput(BaseModel):
    """The customer's earlier cases (`history.*`), as a CASE.json or a rule test states them."""

    model_config = ConfigDict(extra="forbid")

    cases: Annotated[int, Field(ge=0)] = 0
    recent_cases: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _recent_are_among_all(self) -> HistoryInput:
        if self.recent_cases > self.cases:
            raise ValueError("recent_cases cannot exceed cases (recent cases are among them)")
        return self

    def to_history(self) -> CustomerHistory:
        """The `CustomerHistory` the rules see."""
        return CustomerHistory(cases=self.cases, recent_cases=self.recent_cases)


class CaseFactsInput(BaseModel):
    """The case a message belongs to, as far as rules can see it; every key is optional."""

    model_config = ConfigDict(extra="forbid")

    contacts: Annotated[int, Field(ge=1)] = 1
    channels: list[str] | None = None
    age: Span = timedelta(0)
    reopened: Annotated[int, BeforeValidator(lambda v: int(v) if isinstance(v, bool) else v)] = 0
    status: str = "new"
    unanswered_for: Span = timedelta(0)
    agent_replies: Annotated[int, Field(ge=0)] = 0
    priority: Priority | None = None
    channel_switches: Annotated[int, Field(ge=0)] = 0
    customer_escalations: Annotated[int, Field(ge=0)] = 0
    history: HistoryInput = Field(default_factory=HistoryInput)

    def to_facts(self, channel: str) -> CaseFacts:
        """The `CaseFacts` for a message on `channel` (the case's channels default to it)."""
        return CaseFacts(
            contacts=self.contacts,
            channels=tuple(self.channels) if self.channels is not None else (channel,),
            age=self.age,
            reopened=self.reopened,
            status=self.status,
            unanswered_for=self.unanswered_for,
            agent_replies=self.agent_replies,
            priority=self.priority,
            channel_switches=self.channel_switches,
            customer_escalations=self.customer_escalations,
            history=self.history.to_history(),
        )


def case_facts_from(data: Any, channel: str) -> CaseFacts:
    """Validate hand-written case facts; raises pydantic's `ValidationError` on a mistake."""
    return CaseFactsInput.model_validate(data).to_facts(channel)
