"""The SLA clock state of one case and the events its transitions emit, as plain JSON-able data.

Everything here is a frozen value: transitions in `rules.clocks` return new values. All
times are UTC-aware datetimes; `to_dict`/`from_dict` round-trip exactly through JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

from rules._decision import PlannedEscalation
from rules._pages import PageLevel, PageRequest
from schemas import CLOCK_NAMES, ClockState, Priority, SlaClockView

__all__ = [
    "CLOCK_NAMES",
    "CaseClocks",
    "ClockEvent",
    "ClockEventKind",
    "EscalationAction",
    "EscalationTimer",
    "SlaClock",
]

ACTIVE_STATES = frozenset({ClockState.RUNNING, ClockState.WARNING, ClockState.PAUSED})
"""States in which a clock still counts towards (or waits to count towards) its target."""


class ClockEventKind(StrEnum):
    """What a clock event reports; the values are the `cases.events` event types."""

    STARTED = "sla.started"
    PAUSED = "sla.paused"
    RESUMED = "sla.resumed"
    MET = "sla.met"
    WARNING = "sla.warning"
    BREACHED = "sla.breached"
    ESCALATED = "case.escalated"


_Value = TypeVar("_Value")


def replace(value: _Value, /, **changes: Any) -> _Value:
    """A copy of a frozen value here with some fields changed (`dataclasses.replace`).

    The values here have no `__post_init__` and no slots, so copying their `__dict__` is
    exact; it skips the per-call field introspection that made `dataclasses.replace` a
    sixth of the cost of firing a case's clocks.
    """
    fields = value.__dict__
    for name in changes:  # one or two names: a loop beats building key sets
        if name not in fields:
            raise TypeError(f"{type(value).__name__} has no field {name!r}")
    copy = object.__new__(type(value))
    copy.__dict__.update(fields)
    copy.__dict__.update(changes)
    return copy


_ISO_CACHE_SIZE = 8192


def iso(moment: datetime) -> str:
    """`moment` in RFC 3339 UTC with a `Z`, as events and stored state print times."""
    if moment.tzinfo is not UTC:  # the engine's times are UTC already: skip the conversion
        moment = moment.astimezone(UTC)
    return _utc_text(moment)


@lru_cache(maxsize=_ISO_CACHE_SIZE)
def _utc_text(moment: datetime) -> str:
    """A UTC datetime's text, remembered: the same few instants of a case (its start, due
    and warning times) are printed in every reason, discriminator and state write.

    Only UTC datetimes come here: two datetimes of another zone that differ only in `fold`
    (the two passes of a repeated hour) compare equal but are different instants.
    """
    return moment.isoformat()[:-6] + "Z"  # a UTC time's isoformat ends with "+00:00"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _opt_iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _opt_time(text: str | None) -> datetime | None:
    return None if text is None else _time(text)


def _seconds(span: timedelta) -> float:
    if not span:
        return 0.0  # what the division gives for no time (most clocks never pause)
    return span / timedelta(microseconds=1) / 1_000_000


def _span(seconds: float) -> timedelta:
    return timedelta(microseconds=round(seconds * 1_000_000))


@dataclass(frozen=True)
class SlaClock:
    """One run of one SLA clock: when it started, its target and how it stands.

    `due_at` and `warn_at` already include `paused_total` (open time spent paused,
    counted in the policy's calendar). While paused they are provisional: resuming moves
    them out by the paused open time. `run` counts the runs of this clock in the case
    (next_response restarts per customer message, resolution on reopen); `pauses` counts
    this run's pauses. Both make event discriminators unique.
    """

    name: str
    state: ClockState
    started_at: datetime
    target: str
    due_at: datetime
    warn_at: datetime
    paused_total: timedelta = timedelta(0)
    paused_since: datetime | None = None
    met_at: datetime | None = None
    breached_at: datetime | None = None
    warned: bool = False
    run: int = 1
    pauses: int = 0

    @property
    def active(self) -> bool:
        """True while the clock counts (running, warning) or waits paused."""
        return self.state in ACTIVE_STATES

    @property
    def key(self) -> str:
        """`name#run`: identifies this run of the clock within the case."""
        return f"{self.name}#{self.run}"

    def to_dict(self) -> dict[str, Any]:
        """The clock as plain JSON data (times RFC 3339 UTC, paused total in seconds)."""
        return {
            "name": self.name,
            "state": self.state.value,
            "started_at": iso(self.started_at),
            "target": self.target,
            "due_at": iso(self.due_at),
            "warn_at": iso(self.warn_at),
            "paused_total_seconds": _seconds(self.paused_total),
            "paused_since": _opt_iso(self.paused_since),
            "met_at": _opt_iso(self.met_at),
            "breached_at": _opt_iso(self.breached_at),
            "warned": self.warned,
            "run": self.run,
            "pauses": self.pauses,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlaClock:
        """Read back what `to_dict` wrote."""
        return cls(
            name=data["name"],
            state=ClockState(data["state"]),
            started_at=_time(data["started_at"]),
            target=data["target"],
            due_at=_time(data["due_at"]),
            warn_at=_time(data["warn_at"]),
            paused_total=_span(data["paused_total_seconds"]),
            paused_since=_opt_time(data["paused_since"]),
            met_at=_opt_time(data["met_at"]),
            breached_at=_opt_time(data["breached_at"]),
            warned=bool(data["warned"]),
            run=int(data["run"]),
            pauses=int(data["pauses"]),
        )


def step_to_dict(step: PlannedEscalation) -> dict[str, Any]:
    """An escalation step as plain JSON data (`after` in seconds); page fields if it pages."""
    data: dict[str, Any] = {
        "on": step.on,
        "clock": step.clock,
        "after_seconds": None if step.after is None else _seconds(step.after),
        "queue": step.queue,
        "priority": step.priority,
        "tags": list(step.tags),
        "notify": list(step.notify),
        "repeat": step.repeat,
    }
    if step.page is not None:
        data.update(
            {
                "page": step.page,
                "page_levels": [level.to_dict() for level in step.page_levels],
                "until": step.until,
                "every_seconds": None if step.every is None else _seconds(step.every),
                "max_pages": step.max_pages,
            }
        )
    return data


def step_from_dict(data: dict[str, Any]) -> PlannedEscalation:
    """Read back what `step_to_dict` wrote (state written before paging existed has no page)."""
    after = data["after_seconds"]
    every = data.get("every_seconds")
    return PlannedEscalation(
        on=data["on"],
        clock=data["clock"],
        after=None if after is None else _span(after),
        queue=data["queue"],
        priority=data["priority"],
        tags=tuple(data["tags"]),
        notify=tuple(data["notify"]),
        repeat=int(data["repeat"]),
        page=data.get("page"),
        page_levels=tuple(PageLevel.from_dict(item) for item in data.get("page_levels") or ()),
        until=data.get("until"),
        every=None if every is None else _span(every),
        max_pages=int(data.get("max_pages") or 0),
    )


@dataclass(frozen=True)
class EscalationTimer:
    """An armed escalation step: it fires at `next_at`, then repeats `step.after` apart.

    `trigger` is what armed it: `warning:<clock>#<run>`, `breach:<clock>#<run>` or
    `unclaimed#<n>`; `anchor` is when that happened. The step is a snapshot, so a rule
    reload never changes a timer already armed.
    """

    index: int
    trigger: str
    anchor: datetime
    next_at: datetime
    step: PlannedEscalation
    fired: int = 0

    @property
    def clock_key(self) -> str | None:
        """The clock run this timer depends on (`first_response#1`), or None for unclaimed."""
        kind, _, rest = self.trigger.partition(":")
        return rest if kind in ("warning", "breach") else None

    def to_dict(self) -> dict[str, Any]:
        """The timer as plain JSON data."""
        return {
            "index": self.index,
            "trigger": self.trigger,
            "anchor": iso(self.anchor),
            "next_at": iso(self.next_at),
            "step": step_to_dict(self.step),
            "fired": self.fired,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EscalationTimer:
        """Read back what `to_dict` wrote."""
        return cls(
            index=int(data["index"]),
            trigger=data["trigger"],
            anchor=_time(data["anchor"]),
            next_at=_time(data["next_at"]),
            step=step_from_dict(data["step"]),
            fired=int(data["fired"]),
        )


@dataclass(frozen=True)
class CaseClocks:
    """Everything the SLA engine knows about one case: its clocks, escalation timers and facts.

    `as_of` is the latest event time processed: everything due at or before it has been
    emitted, and a later input stamped earlier counts as happening at `as_of`.
    """

    policy: str
    calendar: str | None
    priority: Priority
    status: str
    opened_at: datetime
    as_of: datetime
    escalation_policy: str | None = None
    rule: str | None = None
    claimed: bool = False
    routed_at: datetime | None = None
    unclaimed_since: datetime | None = None
    unclaimed_runs: int = 0
    agent_replied: bool = False
    clocks: tuple[SlaClock, ...] = ()
    timers: tuple[EscalationTimer, ...] = field(default=())

    def clock(self, name: str) -> SlaClock | None:
        """The latest run of the clock called `name`, or None if it never started."""
        for clock in self.clocks:
            if clock.name == name:
                return clock
        return None

    def with_clock(self, clock: SlaClock) -> CaseClocks:
        """A copy with `clock` replacing the clock of the same name (or added), in name order."""
        others = [c for c in self.clocks if c.name != clock.name]
        ordered = sorted([*others, clock], key=lambda c: CLOCK_NAMES.index(c.name))
        return replace(self, clocks=tuple(ordered))

    def views(self) -> dict[str, SlaClockView]:
        """Each clock's due time and state, as a routed case's `sla` field shows them."""
        return {
            clock.name: SlaClockView(due_at=clock.due_at, state=clock.state, warn_at=clock.warn_at)
            for clock in self.clocks
        }

    def to_dict(self) -> dict[str, Any]:
        """The case's clock state as plain JSON data, for a table or changelog."""
        return {
            "policy": self.policy,
            "calendar": self.calendar,
            "priority": self.priority.value,
            "status": self.status,
            "opened_at": iso(self.opened_at),
            "as_of": iso(self.as_of),
            "escalation_policy": self.escalation_policy,
            "rule": self.rule,
            "claimed": self.claimed,
            "routed_at": _opt_iso(self.routed_at),
            "unclaimed_since": _opt_iso(self.unclaimed_since),
            "unclaimed_runs": self.unclaimed_runs,
            "agent_replied": self.agent_replied,
            "clocks": [clock.to_dict() for clock in self.clocks],
            "timers": [timer.to_dict() for timer in self.timers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseClocks:
        """Read back what `to_dict` wrote."""
        return cls(
            policy=data["policy"],
            calendar=data["calendar"],
            priority=Priority(data["priority"]),
            status=data["status"],
            opened_at=_time(data["opened_at"]),
            as_of=_time(data["as_of"]),
            escalation_policy=data["escalation_policy"],
            rule=data["rule"],
            claimed=bool(data["claimed"]),
            routed_at=_opt_time(data["routed_at"]),
            unclaimed_since=_opt_time(data["unclaimed_since"]),
            unclaimed_runs=int(data["unclaimed_runs"]),
            agent_replied=bool(data["agent_replied"]),
            clocks=tuple(SlaClock.from_dict(item) for item in data["clocks"]),
            timers=tuple(EscalationTimer.from_dict(item) for item in data["timers"]),
        )


@dataclass(frozen=True)
class EscalationAction:
    """What a fired escalation step asks for: the stream applies it and publishes the case.

    `priority` is already resolved against the case's priority when the step fired;
    `firing` is 0 for the first firing and 1..`repeat` for the repeats.
    """

    step: int
    on: str
    queue: str | None
    priority: Priority | None
    tags: tuple[str, ...]
    notify: tuple[str, ...]
    firing: int
    repeat: int
    page: PageRequest | None = None

    def to_dict(self) -> dict[str, Any]:
        """The action as plain JSON data (an event payload); `page` only when it pages."""
        extra = {} if self.page is None else {"page": self.page.to_dict()}
        return {
            **extra,
            "step": self.step,
            "on": self.on,
            "queue": self.queue,
            "priority": None if self.priority is None else self.priority.value,
            "tags": list(self.tags),
            "notify": list(self.notify),
            "firing": self.firing,
            "repeat": self.repeat,
        }


@dataclass(frozen=True)
class ClockEvent:
    """One thing that happened to a case's SLA: a clock change or an escalation to carry out.

    `at` is the instant the event is FOR (the deadline, the reply time), not when it was
    computed. `discriminator` is unique within the case and the same on every replay, so
    `case_id` + `discriminator` gives a stable event id. `reason` says why in words.
    """

    kind: ClockEventKind
    clock: str | None
    at: datetime
    reason: str
    discriminator: str
    due_at: datetime | None = None
    escalation: EscalationAction | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON data."""
        return {
            "kind": self.kind.value,
            "clock": self.clock,
            "at": iso(self.at),
            "reason": self.reason,
            "discriminator": self.discriminator,
            "due_at": _opt_iso(self.due_at),
            "escalation": None if self.escalation is None else self.escalation.to_dict(),
        }
