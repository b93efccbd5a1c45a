"""One SLA clock run: start, pause, resume, meet and re-target it, and the words that say why.

Due and warning times come from `rules._sla_policy.deadlines`, the one place they are computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from rules._clock_state import CaseClocks, ClockEvent, ClockEventKind, SlaClock, iso, replace
from rules._decision import PlannedEscalation
from rules._ruleset import CompiledRuleSet
from rules._sla_policy import SlaPolicy, deadlines
from rules.calendar import Duration, parse_duration
from schemas import (
    SLA_CLOCKS,
    CaseMoment,
    ClockDefinition,
    ClockState,
    Priority,
    clock_definition,
)

__all__ = ["ClockPolicy", "to_utc"]

_SECOND = timedelta(seconds=1)
_SPAN_CACHE_SIZE = 1024


@dataclass(frozen=True)
class ClockPolicy:
    """The SLA policy and escalation steps a case runs under, and the route that chose them.

    Build it from a rule set and the case's decision with `ClockPolicy.from_ruleset`.
    `clocks` is the clock table the transitions follow: `schemas.SLA_CLOCKS`.
    """

    sla: SlaPolicy
    steps: tuple[PlannedEscalation, ...] = ()
    escalation: str | None = None
    rule: str | None = None
    clocks: tuple[ClockDefinition, ...] = SLA_CLOCKS
    _moments: dict[CaseMoment, tuple[tuple[str, ...], tuple[str, ...]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "_moments",
            {
                moment: (
                    tuple(row.name.value for row in self.clocks if moment in row.starts_on),
                    tuple(row.name.value for row in self.clocks if moment in row.met_on),
                )
                for moment in CaseMoment
            },
        )

    def started_on(self, moment: CaseMoment) -> tuple[str, ...]:
        """The clocks the table starts on `moment`, in table order."""
        return self._moments[moment][0]

    def met_on(self, moment: CaseMoment) -> tuple[str, ...]:
        """The clocks the table meets on `moment`, in table order."""
        return self._moments[moment][1]

    @classmethod
    def from_ruleset(
        cls,
        ruleset: CompiledRuleSet,
        sla_policy: str,
        escalation_policy: str | None = None,
        rule: str | None = None,
    ) -> ClockPolicy:
        """The named SLA and escalation policies of `ruleset` (KeyError if the SLA is unknown).

        An escalation policy the rule set no longer has means no steps. The rule set keeps
        the policies built from it (a frozen value per combination; see
        `CompiledRuleSet.remembered`), so stage C builds each one once, not per message.
        """
        return ruleset.remembered(
            ("clock_policy", sla_policy, escalation_policy, rule),
            lambda: cls._build(ruleset, sla_policy, escalation_policy, rule),
        )

    @classmethod
    def _build(
        cls,
        ruleset: CompiledRuleSet,
        sla_policy: str,
        escalation_policy: str | None,
        rule: str | None,
    ) -> ClockPolicy:
        steps = ruleset.escalation_policies.get(escalation_policy or "", ())
        return cls(ruleset.sla_policies[sla_policy], tuple(steps), escalation_policy, rule)

    def target(self, priority: Priority, clock: str) -> Duration | None:
        """The clock's target at `priority`, or None when the policy sets none."""
        return self.sla.targets.get(priority, {}).get(clock)

    def definition(self, clock: str) -> ClockDefinition:
        """The row of the clock called `clock` in `clocks` (else in `schemas.SLA_CLOCKS`)."""
        for row in self.clocks:
            if row.name == clock:
                return row
        return clock_definition(clock)


def to_utc(moment: datetime) -> datetime:
    """`moment` in UTC, to the microsecond: the engine's time resolution.

    Never truncated to the second: a deadline truncated down would fire up to a second
    before the instant it is for, ahead of an answer sent in time.
    """
    return moment.astimezone(UTC)


@lru_cache(maxsize=_SPAN_CACHE_SIZE)
def span_text(span: timedelta) -> str:
    """A timedelta as rule-file text (`1h30m`), with fractions of a second dropped."""
    whole = span - span % _SECOND
    return Duration(open_time=whole).describe()


def new_clock(
    policy: ClockPolicy, name: str, target: Duration, at: datetime, run: int, paused: bool
) -> SlaClock:
    """A fresh run of clock `name` from `at`, paused from the start if `paused`."""
    warn_at, due_at = deadlines(policy.sla, at, target, timedelta(0))
    return SlaClock(
        name=name,
        state=ClockState.PAUSED if paused else ClockState.RUNNING,
        started_at=at,
        target=target.describe(),
        due_at=due_at,
        warn_at=warn_at,
        paused_since=at if paused else None,
        run=run,
    )


def describe(case: CaseClocks, clock: SlaClock) -> str:
    """Why a clock stands where it does: target, priority, policy, calendar, pauses, rule."""
    calendar = case.calendar or "24x7"
    chosen = f" (set by route {case.rule!r})" if case.rule else ""
    return (
        f"{clock.name} target {clock.target} at priority {case.priority.value} "
        f"under SLA policy {case.policy!r}{chosen}, counted in calendar {calendar!r} "
        f"from {iso(clock.started_at)}, paused {span_text(clock.paused_total)} in total; "
        f"due {iso(clock.due_at)}"
    )


def start_clock(
    case: CaseClocks, policy: ClockPolicy, name: str, at: datetime
) -> tuple[CaseClocks, list[ClockEvent]]:
    """Start a new run of clock `name` at `at` if the policy targets it at the case's priority."""
    target = policy.target(case.priority, name)
    if target is None:
        return case, []
    previous = case.clock(name)
    run = previous.run + 1 if previous is not None else 1
    paused = case.status in policy.sla.pause_when
    clock = new_clock(policy, name, target, at, run, paused)
    state = "paused (case is " + case.status + ")" if paused else "running"
    event = ClockEvent(
        kind=ClockEventKind.STARTED,
        clock=name,
        at=at,
        reason=f"started, {state}: {describe(case, clock)}",
        discriminator=f"{clock.key}:start:{iso(at)}",
        due_at=clock.due_at,
    )
    return case.with_clock(clock), [event]


def pause_clock(case: CaseClocks, clock: SlaClock, at: datetime) -> tuple[SlaClock, ClockEvent]:
    """Pause a counting clock at `at`."""
    paused = replace(clock, state=ClockState.PAUSED, paused_since=at, pauses=clock.pauses + 1)
    event = ClockEvent(
        kind=ClockEventKind.PAUSED,
        clock=clock.name,
        at=at,
        reason=f"paused: case status {case.status!r} stops the clock; {describe(case, paused)}",
        discriminator=f"{clock.key}:pause#{paused.pauses}:{iso(at)}",
        due_at=paused.due_at,
    )
    return paused, event


def paused_until(policy: ClockPolicy, clock: SlaClock, at: datetime) -> SlaClock:
    """`clock` with the open time paused up to `at` added to its total and deadlines moved."""
    if clock.paused_since is None:
        return clock
    paused_total = clock.paused_total + policy.sla.calendar.elapsed(clock.paused_since, at)
    target = parse_duration(clock.target)
    warn_at, due_at = deadlines(policy.sla, clock.started_at, target, paused_total)
    return replace(
        clock, paused_total=paused_total, paused_since=None, warn_at=warn_at, due_at=due_at
    )


def resume_clock(
    case: CaseClocks, policy: ClockPolicy, clock: SlaClock, at: datetime
) -> tuple[SlaClock, ClockEvent]:
    """Resume a paused clock at `at`; its deadlines move out by the open time it was paused."""
    counted = paused_until(policy, clock, at)
    state = ClockState.WARNING if counted.warned else ClockState.RUNNING
    resumed = replace(counted, state=state)
    event = ClockEvent(
        kind=ClockEventKind.RESUMED,
        clock=clock.name,
        at=at,
        reason=f"resumed: case status {case.status!r} counts again; {describe(case, resumed)}",
        discriminator=f"{clock.key}:resume#{clock.pauses}:{iso(at)}",
        due_at=resumed.due_at,
    )
    return resumed, event


def meet_clock(
    case: CaseClocks, policy: ClockPolicy, clock: SlaClock, at: datetime, why: str
) -> tuple[SlaClock, ClockEvent]:
    """Stop `clock` as met at `at` (late if it had breached), saying `why`."""
    met = replace(paused_until(policy, clock, at), state=ClockState.MET, met_at=at)
    if clock.breached_at is not None:
        late = policy.sla.calendar.elapsed(clock.breached_at, at)
        verdict = f"met {span_text(late)} of open time late"
    else:
        verdict = "met in time"
    event = ClockEvent(
        kind=ClockEventKind.MET,
        clock=clock.name,
        at=at,
        reason=f"{verdict} ({why}): {describe(case, met)}",
        discriminator=f"{clock.key}:met:{iso(at)}",
        due_at=met.due_at,
    )
    return met, event


def retarget(case: CaseClocks, policy: ClockPolicy, priority: Priority, at: datetime) -> CaseClocks:
    """The case at `priority`: each counting clock re-targeted from its own start.

    Breached and met clocks keep their history; a clock with no target at the new priority
    keeps its current one; a clock the old priority did not have is not started. A clock
    that already warned does not warn again.
    """
    case = replace(case, priority=priority)
    for clock in case.clocks:
        if not clock.active or not policy.definition(clock.name).retargets:
            continue
        target = policy.target(priority, clock.name)
        if target is None:
            continue
        warn_at, due_at = deadlines(policy.sla, clock.started_at, target, clock.paused_total)
        case = case.with_clock(
            replace(clock, target=target.describe(), warn_at=warn_at, due_at=due_at)
        )
    return case
