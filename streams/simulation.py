"""The worker's stages on simulated time: its own identity, threading, case logic and clocks.

Rule timeline tests and backtests replay messages and agent actions without Kafka, but
they must decide exactly what the worker decides. Nothing here re-implements a stage: a
message goes through `IdentityDirectory.resolve` (stage A), `thread` (stage B) and
`entry_for` / `apply_message` (stage C); an action through `apply_action`; a deadline
through `fire_clocks`. Only the clock is simulated.

Cases never influence each other in stage C, so each case's deadlines fire lazily, in the
order the worker's timer would fire them: before the case's next record, every deadline
due before the record's moment, each as of its own deadline; after the record, those due
at that very moment; and at the end of the replay, all those due by then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from rules import CompiledRuleSet
from schemas import AgentAction, CaseEvent, InboundMessage
from streams.actions import apply_action
from streams.case_entry import entry_for
from streams.case_state import CaseState
from streams.casework import apply_message, fire_clocks
from streams.identity import IdentityDirectory
from streams.records import ResolvedMessage, ThreadedMessage
from streams.threader import CustomerState, NotThreaded, ThreadingPolicy, thread

MAX_FIRINGS = 10_000
"""A bound on the firings of one case between two records, so a clock that never settles
cannot hang a replay."""

EventSink = Callable[[CaseState, list[CaseEvent]], None]
"""Receives the case as it stands after each change, and the events the change wrote."""


def fire_due(
    state: CaseState,
    ruleset: CompiledRuleSet,
    until: datetime,
    written: list[CaseEvent],
    *,
    including: bool,
) -> CaseState:
    """Fire each deadline up to `until` (at it too when `including`) as of itself.

    The events go to `written`; the case as it then stands is returned. A firing that
    changes nothing stops the case's timing until it changes again, as the worker does.
    """
    for _ in range(MAX_FIRINGS):
        deadline = state.next_deadline
        if deadline is None or deadline > until or (deadline == until and not including):
            return state
        update = fire_clocks(state, ruleset, deadline)
        if not update.changed:
            return update.state.model_copy(update={"next_deadline": None})
        state = update.state
        written += update.events
    raise RuntimeError(f"the clocks of case {state.case_id} did not settle by {until.isoformat()}")


@dataclass
class ReplayCounts:
    """What happened to the replayed records that did not simply change a case."""

    duplicates: int = 0
    not_threaded: int = 0
    unknown_case_actions: int = 0


@dataclass
class SimulatedWorker:
    """Stages A to C of one worker holding every partition, fed in event-time order."""

    ruleset: CompiledRuleSet
    sink: EventSink
    threading: ThreadingPolicy = field(default_factory=ThreadingPolicy)
    identity: IdentityDirectory = field(default_factory=IdentityDirectory)
    customers: dict[str, CustomerState] = field(default_factory=dict)
    cases: dict[str, CaseState] = field(default_factory=dict)
    counts: ReplayCounts = field(default_factory=ReplayCounts)

    def message(self, message: InboundMessage, at: datetime) -> None:
        """A customer message that Kafka took at `at`: resolve, thread, apply to its case."""
        threaded = self.thread_message(message, at)
        if threaded is not None:
            self.threaded(threaded)

    def thread_message(self, message: InboundMessage, at: datetime) -> ThreadedMessage | None:
        """Stages A and B for a message: its customer and case; None (counted) if dropped."""
        resolution = self.identity.resolve(message, at)  # applies the links it makes
        resolved = ResolvedMessage(
            customer_id=resolution.customer_id,
            message=message,
            ingested_at=at,
            identity_evidence=resolution.evidence,
        )
        customer = self.customers.get(resolved.customer_id)
        customer, threaded = thread(customer, resolved, self.threading, at)
        self.customers[resolved.customer_id] = customer
        if isinstance(threaded, NotThreaded):
            if threaded.reason == "duplicate":
                self.counts.duplicates += 1
            else:
                self.counts.not_threaded += 1
            return None
        return threaded

    def threaded(self, threaded: ThreadedMessage) -> None:
        """Stage C for a threaded message: it joins its case, or moves to the successor."""
        for _ in range(MAX_FIRINGS):
            state = self._due_before(threaded.case_id, threaded.arrived_at)
            moved = entry_for(state, threaded, self.threading)
            if moved is None:
                break
            if isinstance(moved, NotThreaded):
                self.counts.not_threaded += 1
                return
            threaded = moved
        update = apply_message(state, threaded, self.ruleset)
        if not update.changed:
            self.counts.duplicates += 1
            return
        self._settle(update.state, update.events, threaded.arrived_at)

    def action(self, action: AgentAction) -> None:
        """An agent action on its case, at the action's own time."""
        state = self._due_before(action.case_id, action.at)
        update = apply_action(state, action, self.ruleset)
        if update is None:
            self.counts.unknown_case_actions += 1
            return
        if update.changed:
            self._settle(update.state, update.events, action.at)

    def finish(self, until: datetime) -> None:
        """Fire every deadline due by `until` (the end of the replayed range)."""
        for case_id, held in list(self.cases.items()):
            if held.next_deadline is not None and held.next_deadline <= until:
                written: list[CaseEvent] = []
                state = fire_due(held, self.ruleset, until, written, including=True)
                self.cases[case_id] = state
                if written:
                    self.sink(state, written)

    def _due_before(self, case_id: str, at: datetime) -> CaseState | None:
        """The case, with the deadlines due before `at` fired first."""
        state = self.cases.get(case_id)
        if state is None or state.next_deadline is None or state.next_deadline >= at:
            return state
        written: list[CaseEvent] = []
        state = fire_due(state, self.ruleset, at, written, including=False)
        self.cases[case_id] = state
        if written:
            self.sink(state, written)
        return state

    def _settle(self, state: CaseState, events: list[CaseEvent], at: datetime) -> None:
        """Keep the changed case, firing what fell due at the very moment of the change."""
        if state.next_deadline is not None and state.next_deadline <= at:
            events = list(events)
            state = fire_due(state, self.ruleset, at, events, including=True)
        self.cases[state.case_id] = state
        self.sink(state, events)
