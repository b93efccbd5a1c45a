"""A compiled rule set: evaluates messages to decisions and explains how it got there."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar, cast

from rules._acknowledgements import DEFAULT_TEMPLATE, AcknowledgementTemplate
from rules._decision import CaseFacts, Decision, DueTimes, PlannedEscalation
from rules._message_facts import Facts
from rules._problems import RuleProblem
from rules._route_tree import Outcome, RouteNode, walk
from rules._sla_policy import SlaPolicy, due_times
from rules.calendar import BusinessCalendar
from schemas import InboundMessage, Priority

REMEMBERED_LIMIT = 4096
"""The most derived values a rule set keeps (`CompiledRuleSet.remembered`)."""

_Built = TypeVar("_Built")


@dataclass(frozen=True)
class QueueSettings:
    """A declared agent queue and its settings."""

    name: str
    skills: tuple[str, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class RouteTrial:
    """One route as `explain` saw it: matched, not matched, or never tried."""

    name: str
    depth: int
    matched: bool | None
    reason: str
    where: tuple[str, int, int]

    def to_json(self) -> dict[str, Any]:
        """The trial as plain JSON data."""
        file, line, col = self.where
        return {
            "route": self.name,
            "depth": self.depth,
            "matched": self.matched,
            "reason": self.reason,
            "at": f"{file}:{line}:{col}",
        }


@dataclass(frozen=True)
class Explanation:
    """A decision with the trace of every route tried on the way to it."""

    decision: Decision
    trials: tuple[RouteTrial, ...]

    def lines(self) -> list[str]:
        """The trace as indented human-readable lines."""
        out: list[str] = []
        for trial in self.trials:
            mark = {True: "MATCH", False: "no   ", None: "skip "}[trial.matched]
            out.append(f"{'  ' * trial.depth}{mark} {trial.name}: {trial.reason}")
        return out


@dataclass(frozen=True)
class CompiledRuleSet:
    """A validated, compiled rule set; `evaluate` is a pure function of its arguments."""

    version: str
    root: RouteNode
    queues: Mapping[str, QueueSettings]
    sla_policies: Mapping[str, SlaPolicy]
    escalation_policies: Mapping[str, tuple[PlannedEscalation, ...]]
    calendars: Mapping[str, BusinessCalendar]
    sources: Mapping[str, str]
    warnings: tuple[RuleProblem, ...] = ()
    route_count: int = field(default=0)
    acknowledgements: Mapping[str, AcknowledgementTemplate] = field(default_factory=dict)
    """Acknowledgement templates by name (`acknowledgements:`)."""
    _remembered: dict[Hashable, Any] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for name in (
            "queues",
            "sla_policies",
            "escalation_policies",
            "calendars",
            "sources",
            "acknowledgements",
        ):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def remembered(self, key: Hashable, build: Callable[[], _Built]) -> _Built:
        """`build()`'s value, built once per `key` for this rule set and kept with it.

        For values derived from the rule set alone (`ClockPolicy.from_ruleset` keeps its
        policies here), so a value is never shared with another rule set. At most
        `REMEMBERED_LIMIT` are kept: past that the store starts afresh.
        """
        store = self._remembered
        try:
            return cast(_Built, store[key])
        except KeyError:
            pass
        value = build()
        if len(store) >= REMEMBERED_LIMIT:
            store.clear()
        store[key] = value
        return value

    def evaluate(self, message: InboundMessage, case: CaseFacts | None, at: datetime) -> Decision:
        """Decide queue, priority, tags, SLA due times and escalations for `message` at `at`."""
        facts = Facts(message, case, at)
        outcome = self._start()
        walk(self.root, facts, outcome)
        return self._decide(outcome, facts)

    def explain(self, message: InboundMessage, case: CaseFacts | None, at: datetime) -> Explanation:
        """Evaluate without indexes, recording each route tried and the condition that decided."""
        facts = Facts(message, case, at)
        outcome = self._start()
        trials: list[RouteTrial] = []
        _explain_walk(self.root, facts, outcome, trials, 0)
        return Explanation(self._decide(outcome, facts), tuple(trials))

    def _start(self) -> Outcome:
        root = self.root
        return Outcome(
            queue=root.queue or "general",
            priority=Priority(root.priority or "normal"),
            sla=root.sla,
            escalation=root.escalation,
            tags=list(root.tags),
            acknowledgement=root.acknowledgement,
        )

    def _decide(self, outcome: Outcome, facts: Facts) -> Decision:
        policy = self.sla_policies.get(outcome.sla) if outcome.sla else None
        due: Mapping[str, datetime] = {}
        if policy is not None:
            priority, case, at = outcome.priority, facts.case, facts.at  # values, as of now
            due = DueTimes(lambda: due_times(policy, priority, case, at))
        steps = self.escalation_policies.get(outcome.escalation, ()) if outcome.escalation else ()
        return Decision(
            queue=outcome.queue,
            priority=outcome.priority,
            tags=tuple(outcome.tags),
            matched=tuple(outcome.matched),
            rules_version=self.version,
            sla_policy=outcome.sla,
            calendar=policy.calendar_name if policy else None,
            sla_due=due,
            escalation_policy=outcome.escalation,
            escalations=steps,
            acknowledgement=self._acknowledgement(outcome.acknowledgement),
        )

    def _acknowledgement(self, chosen: str | None) -> str | None:
        """The template a route chose, else `default` when the rule set has one."""
        if chosen is not None:
            return chosen
        return DEFAULT_TEMPLATE if DEFAULT_TEMPLATE in self.acknowledgements else None


def _explain_walk(
    node: RouteNode, facts: Facts, outcome: Outcome, trials: list[RouteTrial], depth: int
) -> None:
    winner: str | None = None
    for child in node.children:
        name = child.name or "(unnamed)"
        if winner is not None:
            trials.append(
                RouteTrial(name, depth, None, f"not tried: {winner!r} matched first", child.where)
            )
            continue
        held, why = (True, "no conditions") if child.cond is None else child.cond.explain(facts)
        trials.append(RouteTrial(name, depth, held, why, child.where))
        if held:
            outcome.apply(child)
            _explain_walk(child, facts, outcome, trials, depth + 1)
            if not child.continue_:
                winner = name
