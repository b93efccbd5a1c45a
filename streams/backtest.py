"""Replay recorded history through a rule set and keep what every case came to.

History is customer messages (each with the moment Kafka took it) and agent actions, in
event-time order. They go through `streams.simulation.SimulatedWorker`, the worker's own
stages on simulated time, so a replay decides exactly what the worker would have decided
under that rule set; nothing depends on the wall clock or on the machine's speed.

What is kept per case is small (`CaseOutcome`): its routing as it ends the replay, its
clocks' due times, and every warning, breach, met clock and escalation step it wrote.
Comparing two replays is `streams.backtest_report`'s job.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from rules import CompiledRuleSet
from schemas import AgentAction, CaseEvent, ClockName, InboundMessage
from streams.case_order import CaseInput, case_order
from streams.case_state import CaseState
from streams.gc_pause import gc_paused
from streams.identity import IdentityDirectory
from streams.simulation import ReplayCounts, SimulatedWorker
from streams.threader import ThreadingPolicy

TRACKED = ("sla.warning", "sla.breached", "sla.met", "case.escalated")
"""The clock events a backtest compares (gained, lost or moved)."""

PROGRESS_EVERY = 5_000
"""Records between two progress reports."""

IdentityFactory = Callable[[], IdentityDirectory]
"""Makes the customer directory a replay starts with (the worker's identity settings)."""

Progress = Callable[[int, int], None]
"""Told (records replayed, records in all) every `PROGRESS_EVERY` records and at the end."""


@dataclass(frozen=True)
class HistoryItem:
    """One recorded input: a customer message taken at `at`, or an agent action."""

    at: datetime
    message: InboundMessage | None = None
    action: AgentAction | None = None


@dataclass
class CaseOutcome:
    """What one case came to in a replay."""

    case_id: str
    queue: str | None = None
    priority: str | None = None
    tags: tuple[str, ...] = ()
    sla_policy: str | None = None
    due: dict[str, str] = field(default_factory=dict)
    """Each clock's due time (UTC) as the case ended the replay."""
    clock_events: dict[str, str] = field(default_factory=dict)
    """`"sla.breached first_response"`-style name (with the escalation step and firing,
    and a count when a name repeats) → when it happened (UTC)."""
    breach_queues: list[str] = field(default_factory=list)
    """The queue the case was in at each breach."""
    first_response: str | None = None
    """`met` or `breached` for the first response clock, None while it runs (or has none)."""


@dataclass
class Replayed:
    """Every case's outcome, and what happened to records that changed no case."""

    rules_version: str
    outcomes: dict[str, CaseOutcome]
    counts: ReplayCounts


def replay(
    items: Sequence[HistoryItem],
    ruleset: CompiledRuleSet,
    until: datetime,
    *,
    threading: ThreadingPolicy | None = None,
    identity: IdentityFactory = IdentityDirectory,
    progress: Progress | None = None,
    by_case: bool = True,
) -> Replayed:
    """Replay `items` (in event-time order) under `ruleset`; fire the clocks up to `until`.

    `identity` makes the (empty) customer directory the replay starts with. With `by_case`
    stages A and B run over the whole history in event-time order and stage C case group by
    case group (`streams.case_order`), which decides the same and runs faster; should an
    action come to a case the grouping did not foresee, the replay is run again in plain
    event-time order.
    """
    # The history and the cases replayed so far are hundreds of thousands of objects that
    # live to the end: the cyclic collector would scan them again and again (a fifth of
    # the time at 10,000 messages, more as they grow). Reference counting frees the rest.
    # What the replay built is frozen too and stays so: reference counting frees it when
    # the caller drops it (it holds no cycles), and a full collection over it would cost
    # seconds at 100,000 messages, right when the results are compared.
    gc.freeze()
    with gc_paused():
        replayed: Replayed | None = None
        if by_case:
            replayed = _replay(items, ruleset, until, threading, identity, progress, True)
        if replayed is None:
            replayed = _replay(items, ruleset, until, threading, identity, progress, False)
        assert replayed is not None  # in event-time order, a replay always completes
        gc.freeze()
    return replayed


def _replay(
    items: Sequence[HistoryItem],
    ruleset: CompiledRuleSet,
    until: datetime,
    threading: ThreadingPolicy | None,
    identity: IdentityFactory,
    progress: Progress | None,
    by_case: bool,
) -> Replayed | None:
    """One replay, by case group or in event-time order; None if grouping did not hold."""
    outcomes: dict[str, CaseOutcome] = {}

    def observe(state: CaseState, events: list[CaseEvent]) -> None:
        outcome = outcomes.get(state.case_id)
        if outcome is None:
            outcome = outcomes[state.case_id] = CaseOutcome(state.case_id)
        for event in events:
            if event.type in TRACKED:
                _note_clock_event(outcome, event)

    worker = SimulatedWorker(ruleset, observe, threading or ThreadingPolicy(), identity())
    total = len(items)
    retired: set[str] = set()

    def retire() -> None:
        """The cases held now are done with: fire what falls due by `until`, note them, drop."""
        worker.finish(until)
        for case_id, state in worker.cases.items():
            outcome = outcomes.get(case_id)
            if outcome is None:
                outcome = outcomes[case_id] = CaseOutcome(case_id)
            _note_final(outcome, state)
        retired.update(worker.cases)
        worker.cases.clear()

    if by_case:
        if not _by_case(worker, items, progress, retire, retired):
            return None
    else:
        for done, item in enumerate(items, 1):
            if item.message is not None:
                worker.message(item.message, item.at)
            elif item.action is not None:
                worker.action(item.action)
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
    retire()
    if progress is not None:
        progress(total, total)
    return Replayed(ruleset.version, outcomes, worker.counts)


def _by_case(
    worker: SimulatedWorker,
    items: Sequence[HistoryItem],
    progress: Progress | None,
    retire: Callable[[], None],
    retired: set[str],
) -> bool:
    """Stages A and B in event-time order, then stage C group by group; False if it cannot.

    After each group its cases are finished and noted (`retire`), so what the replay holds
    stays one group's worth: a week's cases never pile up in memory.
    """
    inputs: list[CaseInput] = []
    for index, item in enumerate(items):
        if item.message is not None:
            threaded = worker.thread_message(item.message, item.at)
            if threaded is not None:
                inputs.append(CaseInput(index, threaded=threaded))
        elif item.action is not None:
            inputs.append(CaseInput(index, action=item.action))
    worker.customers.clear()  # stages A and B are done: only stage C runs from here
    order = case_order(inputs)
    del inputs
    done = len(items) - sum(map(len, order.groups)) - len(order.strays)  # dropped by A and B
    for group in order.groups:
        for entry in group:
            if entry.threaded is not None:
                worker.threaded(entry.threaded)
            elif entry.action is not None:
                worker.action(entry.action)
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, len(items))
        retire()
    for stray in order.strays:
        assert stray.action is not None
        if stray.action.case_id in retired:
            return False  # its case exists: in event-time order it may have met it
        worker.action(stray.action)
    return True


HistoryReader = Callable[[], Sequence[HistoryItem]]
"""Reads the history (in event-time order): each replaying process calls it for itself."""


def replay_both(
    items: Sequence[HistoryItem] | HistoryReader,
    baseline: CompiledRuleSet,
    candidate: CompiledRuleSet,
    until: datetime | None,
    *,
    threading: ThreadingPolicy | None = None,
    identity: IdentityFactory = IdentityDirectory,
    progress: Progress | None = None,
    parallel: bool = True,
) -> tuple[Replayed, Replayed]:
    """Replay the same history under both sets; in two processes when `parallel`.

    The candidate runs in a forked child while this process replays the baseline; the
    replays share nothing, so the result is the same either way. Progress is the
    baseline's. `items` may be a reader: each process then reads the history itself, both
    at once (reading and parsing a week of history is seconds). `until` None is the last
    item's moment.
    """

    def replay_baseline() -> tuple[Sequence[HistoryItem], Replayed]:
        history = _read(items)
        replayed = replay(
            history,
            baseline,
            replay_end(history, until),
            threading=threading,
            identity=identity,
            progress=progress,
        )
        return history, replayed

    if not parallel or "fork" not in multiprocessing.get_all_start_methods():
        history, before = replay_baseline()
        return before, replay(
            history, candidate, replay_end(history, until), threading=threading, identity=identity
        )
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_replay_into,
        args=(sender, items, candidate, until, threading, identity),
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        _history, before = replay_baseline()
        with gc_paused():  # millions of objects arrive: no collection halfway through them
            answer: Any = receiver.recv()
            gc.freeze()
    finally:
        child.join()
        receiver.close()
    if isinstance(answer, BaseException):
        raise answer
    after: Replayed = answer
    return before, after


def _read(items: Sequence[HistoryItem] | HistoryReader) -> Sequence[HistoryItem]:
    """The history, read by this process if `items` is a reader.

    Reading builds hundreds of thousands of objects that live to the end of the replay:
    with the cyclic collector on, it would scan the growing heap again and again (most of
    the reading time at 100,000 messages). They are frozen as read, and stay so (`replay`).
    """
    if not callable(items):
        return items
    with gc_paused():
        read = items()
        gc.freeze()
    return read


def replay_end(items: Sequence[HistoryItem], until: datetime | None) -> datetime:
    """Where a replay of `items` ends: `until`, else the last item's moment (now if none)."""
    if until is not None:
        return until
    return items[-1].at if items else datetime.now(UTC)


def _replay_into(
    sender: Connection,
    items: Sequence[HistoryItem] | HistoryReader,
    ruleset: CompiledRuleSet,
    until: datetime | None,
    threading: ThreadingPolicy | None,
    identity: IdentityFactory,
) -> None:
    try:
        history = _read(items)
        replayed = replay(
            history, ruleset, replay_end(history, until), threading=threading, identity=identity
        )
        sender.send(replayed)
    except Exception as exc:  # the parent raises it: the child has no terminal of its own
        sender.send(RuntimeError(f"the candidate's replay failed: {exc!r}"))
    finally:
        sender.close()


def in_order(items: Iterable[HistoryItem]) -> list[HistoryItem]:
    """Items in event-time order; at the same moment, actions before messages, else as read.

    An agent's action stamped at a moment reaches the case before a message taken then,
    as in rule timelines (the worker's lateness lets actions in before deadlines too).
    """
    return sorted(items, key=lambda item: (item.at, item.message is not None))  # stable


def _note_clock_event(outcome: CaseOutcome, event: CaseEvent) -> None:
    payload = event.payload
    name = event.type
    clock = payload.get("clock")
    if clock:
        name += f" {clock}"
    step = payload.get("escalation")
    if isinstance(step, dict):
        name += f" step {step.get('step')} on {step.get('on')}"
        if step.get("firing"):
            name += f" (repeat {step.get('firing')})"
    key, seen = name, 1
    while key in outcome.clock_events:
        seen += 1
        key = f"{name} #{seen}"
    outcome.clock_events[key] = _utc(event.at)
    if event.type == "sla.breached":
        outcome.breach_queues.append(str(payload.get("queue") or "-"))
    if clock == ClockName.FIRST_RESPONSE and outcome.first_response is None:
        if event.type == "sla.breached":
            outcome.first_response = "breached"
        elif event.type == "sla.met":
            outcome.first_response = "met"


def _note_final(outcome: CaseOutcome, state: CaseState) -> None:
    outcome.queue = state.queue
    outcome.priority = state.priority.value if state.priority else None
    outcome.tags = tuple(state.tags)
    outcome.sla_policy = state.sla_policy
    outcome.due = {
        name: _utc(view.due_at) for name, view in sorted(state.sla.items()) if view.due_at
    }


def _utc(moment: datetime) -> str:
    """`2027-01-04T09:00:00Z`: to the second, in UTC (`strftime` costs twice as much)."""
    if moment.tzinfo is not UTC:  # the engine's times are UTC already
        moment = moment.astimezone(UTC)
    return moment.isoformat()[:19] + "Z"  # cut after the seconds, as strftime's %S
