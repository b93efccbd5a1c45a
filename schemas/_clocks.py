"""The SLA clocks as one table: each clock's name and what starts, pauses, meets and retargets it.

Everything that lists or runs clocks derives from `SLA_CLOCKS`: the rule file's schema (its
`targets` keys and the `clock` of an escalation step), the clock engine in `rules.clocks`,
the due times `rules explain` prints, and the case-store gauges. Adding a clock is one
`ClockName` member and its row in `SLA_CLOCKS` (docs/sla.md, "Adding a clock").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ClockName(StrEnum):
    """The name of an SLA clock, as rule files, a case's `sla` field and events spell it."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class CaseMoment(StrEnum):
    """Something that happens to a case and may start or meet an SLA clock."""

    CASE_OPENED = "case_opened"
    """The first customer message opened the case."""
    CUSTOMER_WRITES_AFTER_REPLY = "customer_writes_after_reply"
    """A customer message arrived on an unresolved case after an agent had replied."""
    AGENT_REPLIED = "agent_replied"
    """An agent replied to the customer."""
    CASE_RESOLVED = "case_resolved"
    """The case was resolved (this also stops every other clock)."""
    CASE_REOPENED = "case_reopened"
    """A resolved case was reopened."""


@dataclass(frozen=True)
class ClockDefinition:
    """One SLA clock: the moments that start a run of it and the moments that meet it.

    A run starts only if the case's SLA policy has a target for the clock at the case's
    priority. A customer writing after a reply starts no new run while one is still
    waiting; opening and reopening always start a fresh run. Resolving a case stops every
    clock; for a clock met on `CASE_RESOLVED` that is its goal, for the others it is a stop.
    """

    name: ClockName
    starts: str
    """When a run starts, in words (docs, metric help)."""
    met: str
    """What meets a run, in words."""
    starts_on: frozenset[CaseMoment]
    met_on: frozenset[CaseMoment]
    pauses: bool = True
    """Whether a status in the policy's `pause_when` pauses it."""
    retargets: bool = True
    """Whether a priority change re-targets a run that still counts."""


SLA_CLOCKS: tuple[ClockDefinition, ...] = (
    ClockDefinition(
        ClockName.FIRST_RESPONSE,
        starts="the first customer message (the case opens)",
        met="the first agent reply",
        starts_on=frozenset({CaseMoment.CASE_OPENED}),
        met_on=frozenset({CaseMoment.AGENT_REPLIED}),
    ),
    ClockDefinition(
        ClockName.NEXT_RESPONSE,
        starts="a customer message after an agent reply, or the case reopening",
        met="the next agent reply",
        starts_on=frozenset({CaseMoment.CUSTOMER_WRITES_AFTER_REPLY, CaseMoment.CASE_REOPENED}),
        met_on=frozenset({CaseMoment.AGENT_REPLIED}),
    ),
    ClockDefinition(
        ClockName.RESOLUTION,
        starts="the case opens, or reopens",
        met="the case is resolved",
        starts_on=frozenset({CaseMoment.CASE_OPENED, CaseMoment.CASE_REOPENED}),
        met_on=frozenset({CaseMoment.CASE_RESOLVED}),
    ),
)
"""Every SLA clock, in the order their events are emitted when due at the same instant."""

CLOCK_NAMES: tuple[str, ...] = tuple(clock.name.value for clock in SLA_CLOCKS)
"""The clocks' names as plain strings, in `SLA_CLOCKS` order."""

if tuple(name.value for name in ClockName) != CLOCK_NAMES:
    raise RuntimeError("every ClockName needs exactly one row in SLA_CLOCKS, in the same order")


def clock_definition(name: str) -> ClockDefinition:
    """The row of the clock called `name` (KeyError for a name that is no clock)."""
    return _BY_NAME[name]


_BY_NAME = {clock.name.value: clock for clock in SLA_CLOCKS}
