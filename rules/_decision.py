"""What rule evaluation takes and gives: case facts in, a decision out.

This is the seam between `rules` (pure) and `streams` (which owns state and time).
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC as _UTC
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from rules._pages import PageLevel
from schemas import InboundMessage, Priority

_DUE_TEXT_CACHE_SIZE = 4096
"""Due times whose text `due_at_text` remembers (equal instants print the same text)."""


@dataclass(frozen=True)
class CustomerHistory:
    """The customer's earlier cases, as Escalator counted them (`history.*` in conditions)."""

    cases: int = 0
    """The customer's other cases, opened before this message arrived."""
    recent_cases: int = 0
    """Those of them opened within the history window before this message arrived."""


@dataclass(frozen=True)
class CaseFacts:
    """What the rules may know about the case a message belongs to (`case.*` in conditions).

    `history` is about the customer rather than the case (`history.*`); it travels here so
    that one value carries everything stage C knows beyond the message itself.
    """

    contacts: int = 1
    channels: tuple[str, ...] = ()
    age: timedelta = timedelta(0)
    reopened: int = 0
    status: str = "new"
    unanswered_for: timedelta = timedelta(0)
    agent_replies: int = 0
    priority: Priority | None = None
    channel_switches: int = 0
    customer_escalations: int = 0
    """How often the customer asked to escalate the case (the "still not solved?" page)."""
    history: CustomerHistory = CustomerHistory()


@dataclass(frozen=True)
class PlannedEscalation:
    """One escalation step the decision plans, as the rule file states it."""

    on: str
    clock: str | None = None
    after: timedelta | None = None
    queue: str | None = None
    priority: str | None = None
    tags: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    repeat: int = 0
    page: str | None = None
    """The pager (a target or a chain) this step pages, by its name in `pagers:`."""
    page_levels: tuple[PageLevel, ...] = ()
    """The pager resolved at compile time: its levels and their targets."""
    until: str | None = None
    """`acknowledged`: the step repeats every `every` until someone acknowledges the page."""
    every: timedelta | None = None
    max_pages: int = 0
    """The most pages an `until: acknowledged` step sends (a bound, not a plan)."""


class DueTimes(Mapping[str, datetime]):
    """Each clock's due time for a decision, worked out when first read.

    Business-calendar arithmetic is a good part of deciding, and stage C needs the due
    times only when it publishes the decision (`case.routed`) or the case has no clocks:
    a follow-up that changes nothing never pays for them.
    """

    __slots__ = ("_compute", "_due")

    def __init__(self, compute: Callable[[], dict[str, datetime]]) -> None:
        self._compute: Callable[[], dict[str, datetime]] | None = compute
        self._due: dict[str, datetime] = {}

    def _times(self) -> dict[str, datetime]:
        if self._compute is not None:
            self._due, self._compute = self._compute(), None
        return self._due

    def __getitem__(self, clock: str) -> datetime:
        return self._times()[clock]

    def __iter__(self) -> Iterator[str]:
        return iter(self._times())

    def __len__(self) -> int:
        return len(self._times())

    def items(self) -> ItemsView[str, datetime]:
        """The clocks and their due times (the computed dict's own view: one look-up, not one
        per clock as `Mapping.items` makes)."""
        return self._times().items()

    def __repr__(self) -> str:
        return f"DueTimes({self._times()!r})"


@dataclass(frozen=True)
class Decision:
    """The outcome of evaluating a rule set for one message at one time."""

    queue: str
    priority: Priority
    tags: tuple[str, ...]
    matched: tuple[str, ...]
    rules_version: str
    sla_policy: str | None = None
    calendar: str | None = None
    sla_due: Mapping[str, datetime] = field(default_factory=dict)
    """Each clock's due time (`DueTimes` when decided: worked out when first read)."""
    escalation_policy: str | None = None
    escalations: tuple[PlannedEscalation, ...] = ()
    acknowledgement: str | None = None
    """The acknowledgement template for a case this message opens (None: none is sent)."""

    def to_json(self) -> dict[str, Any]:
        """The decision as the JSON object of `escalator rules explain --json`."""
        return {
            "queue": self.queue,
            "priority": self.priority.value,
            "tags": list(self.tags),
            "sla_policy": self.sla_policy,
            "calendar": self.calendar,
            "matched": list(self.matched),
            "sla": {clock: {"due_at": due_at_text(due)} for clock, due in self.sla_due.items()},
            "escalations": [_escalation_json(step) for step in self.escalations],
            "escalation_policy": self.escalation_policy,
            "rules_version": self.rules_version,
            "acknowledgement": self.acknowledgement,
        }


def due_at_text(due: datetime) -> str:
    """A due time as `rules explain --json` prints it: UTC, whole seconds rounded up, `Z`."""
    return _utc_due_text(due if due.tzinfo is _UTC else due.astimezone(_UTC))


@lru_cache(maxsize=_DUE_TEXT_CACHE_SIZE)
def _utc_due_text(due: datetime) -> str:
    """`due_at_text` of a UTC datetime, remembered (only UTC datetimes: see `_clock_state.iso`)."""
    # isoformat of a whole-second UTC time is `...T09:00:00+00:00` (strftime costs 4x more)
    return _whole_second_up(due).isoformat()[:19] + "Z"


def _whole_second_up(moment: datetime) -> datetime:
    """`moment` in UTC, rounded up to the second: a printed due time is never too early."""
    moment = moment.astimezone(_UTC)
    if moment.microsecond:
        moment += timedelta(microseconds=1_000_000 - moment.microsecond)
    return moment


def _escalation_json(step: PlannedEscalation) -> dict[str, Any]:
    data: dict[str, Any] = {"on": step.on}
    if step.clock:
        data["clock"] = step.clock
    if step.after is not None:
        data["after_seconds"] = int(step.after.total_seconds())
    for key in ("queue", "priority"):
        if getattr(step, key):
            data[key] = getattr(step, key)
    if step.tags:
        data["tags"] = list(step.tags)
    if step.notify:
        data["notify"] = list(step.notify)
    if step.repeat:
        data["repeat"] = step.repeat
    if step.page:
        data["page"] = step.page
    if step.until:
        data["until"] = step.until
    if step.every is not None:
        data["every_seconds"] = int(step.every.total_seconds())
    return data


class RuleEvaluator(Protocol):
    """A compiled rule set, as the stream worker uses it."""

    @property
    def version(self) -> str:
        """Content hash of the rule set's sources."""
        ...

    def evaluate(self, message: InboundMessage, case: CaseFacts | None, at: datetime) -> Decision:
        """Decide queue, priority, tags, SLA and escalations for a message arriving at `at`."""
        ...
