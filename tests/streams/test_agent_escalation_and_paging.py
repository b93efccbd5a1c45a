"""Stage C applies an agent's escalation and keeps a case's pages: acknowledged, then resolved.

An escalation moves the case (unowned, in the new queue) and raises its priority (never
lowers it), retargeting the clocks, recorded as `case.escalated` with the agent and reason.
A fired paging step is remembered as an open page; an acknowledgement is recorded with who
and when and stops the repeats; a claim or a resolution resolves every open page.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rules import compile_sources
from schemas import AgentAction, Priority
from streams.actions import apply_action
from streams.case_state import CaseState
from streams.casework import apply_message, fire_clocks
from tests.streams.test_casework import T0, threaded

RULES = compile_sources(
    {
        "paging.yaml": """
version: 1
sla:
  always:
    targets:
      normal: {first_response: 1h}
      urgent: {first_response: 10m}
pagers:
  primary: {pagerduty: {severity: critical}}
  phone: {sms: {to: ["+15550100"]}}
  oncall:
    chain:
      - {page: [primary], pages: 2}
      - {page: [primary, phone]}
escalations:
  paging:
    - {on: breach, page: oncall, until: acknowledged, every: 5m}
queues: {general: {}, tier2: {}, billing: {}}
routes: {queue: general, priority: normal, sla: always, escalation: paging}
"""
    }
)


def new_case() -> CaseState:
    return apply_message(None, threaded("m-1", opens=True), RULES).state


def action(number: int, agent: str, kind: str, minutes: float = 0, **fields: Any) -> AgentAction:
    return AgentAction(
        action_id=f"a-{number}",
        case_id="C-ABCDEFGHIJ",
        agent_id=agent,
        type=kind,  # type: ignore[arg-type]
        at=T0 + timedelta(minutes=minutes or number),
        **fields,
    )


def act(state: CaseState, each: AgentAction) -> tuple[CaseState, list[Any]]:
    update = apply_action(state, each, RULES)
    assert update is not None
    return update.state, update.events


def test_an_agent_escalation_moves_the_case_raises_it_and_says_who_and_why() -> None:
    state, _ = act(new_case(), action(1, "ana", "claim"))
    escalation = action(
        2, "ana", "escalate", queue="tier2", priority=Priority.URGENT, reason="legal threat"
    )
    update = apply_action(state, escalation, RULES)
    assert update is not None
    first = update.events[0]
    assert first.type == "case.escalated"
    assert first.reason == "escalated to queue tier2 and to priority urgent by ana: legal threat"
    assert first.payload["agent"] == "ana" and first.payload["reason"] == "legal threat"
    assert (first.payload["from_queue"], first.payload["from_priority"]) == ("general", "normal")
    assert (first.payload["queue"], first.payload["priority"]) == ("tier2", "urgent")
    assert "escalation" not in first.payload  # nothing for the notifier or the pagers
    after = update.state
    assert (after.queue, after.priority, after.claimed_by) == ("tier2", Priority.URGENT, None)
    assert update.previous_queue == "general"
    assert update.routed is not None and update.routed.queue == "tier2"
    # urgent targets 10m from the open: the clock is retargeted
    assert after.sla["first_response"].due_at == T0 + timedelta(minutes=10)
    again = apply_action(after, escalation, RULES)
    assert again is not None and not again.changed


def test_an_escalation_never_lowers_the_priority() -> None:
    state, _ = act(new_case(), action(1, "lee", "escalate", priority=Priority.URGENT, reason="x"))
    state, events = act(state, action(2, "lee", "escalate", priority=Priority.LOW, reason="y"))
    assert state.priority is Priority.URGENT
    assert "priority kept at urgent" in events[0].reason


def test_a_resolved_case_is_not_escalated() -> None:
    state, _ = act(new_case(), action(1, "ana", "resolve"))
    state, events = act(state, action(2, "ana", "escalate", queue="tier2", reason="too late"))
    assert events[0].type == "action.rejected" and events[0].payload["code"] == "resolved"
    assert state.queue == "general"


def paged(state: CaseState, minutes: float) -> tuple[CaseState, list[Any]]:
    update = fire_clocks(state, RULES, T0 + timedelta(minutes=minutes))
    return update.state, [e for e in update.events if e.type == "case.escalated"]


def test_pages_are_remembered_acknowledged_with_who_and_when_and_stop() -> None:
    state, fired = paged(new_case(), 71)
    assert [e.payload["escalation"]["page"]["number"] for e in fired] == [1, 2, 3]
    assert [e.at for e in fired] == [T0 + timedelta(minutes=m) for m in (60, 65, 70)]
    [page] = state.open_pages
    assert page.key == "C-ABCDEFGHIJ/breach:first_response#1/step0"
    assert [t["name"] for t in page.targets] == ["primary", "phone"]
    assert page.pages == 3
    state, events = act(state, action(9, "pd:Jane Doe", "acknowledge", minutes=72))
    ack = events[0]
    assert ack.type == "case.acknowledged_by_agent"
    assert ack.payload["agent"] == "pd:Jane Doe"
    assert ack.payload["at"] == (T0 + timedelta(minutes=72)).isoformat()
    assert [p["key"] for p in ack.payload["pages"]] == [page.key]
    assert "acknowledged by pd:Jane Doe" in ack.reason
    state, later = paged(state, 200)
    assert later == []
    twice = apply_action(state, action(10, "bo", "acknowledge", minutes=73), RULES)
    assert twice is not None and twice.events[0].payload["code"] == "not_paging"


def test_a_claim_resolves_every_open_page() -> None:
    state, fired = paged(new_case(), 61)
    assert len(fired) == 1
    state, events = act(state, action(5, "ana", "claim", minutes=62))
    [resolved] = [e for e in events if e.type == "case.pages_resolved"]
    assert resolved.payload["by"] == "ana" and resolved.payload["action"] == "claim"
    assert [p["key"] for p in resolved.payload["pages"]] == [
        "C-ABCDEFGHIJ/breach:first_response#1/step0"
    ]
    assert state.open_pages == []
    state, later = paged(state, 200)
    assert later == []
    state, events = act(state, action(6, "ana", "resolve", minutes=201))
    assert not [e for e in events if e.type == "case.pages_resolved"]


def test_firing_pages_never_changes_the_state_it_started_from() -> None:
    """The timer fires on a shallow copy: the state before a page stays as it was."""
    state, _ = paged(new_case(), 61)
    before = state.model_dump(mode="json")
    after, fired = paged(state, 71)
    assert len(fired) == 2
    assert state.model_dump(mode="json") == before
    assert after.open_pages[0].pages == 3 and state.open_pages[0].pages == 1


def test_a_page_due_before_an_acknowledgement_is_written_before_it() -> None:
    """The timer fires a deadline a little late (its lateness); an action stamped after the
    deadline may come first. What fell due before the action is written before it, so the
    reply service never triggers a page after it has acknowledged the incident."""
    state, fired = paged(new_case(), 61)
    assert len(fired) == 1  # page 1 at 60; page 2 falls due at 65, not fired yet
    state, events = act(state, action(9, "ana", "acknowledge", minutes=65.05))
    kinds = [e.type for e in events]
    page = kinds.index("case.escalated")
    ack = kinds.index("case.acknowledged_by_agent")
    assert page < ack, kinds
    assert events[page].payload["escalation"]["page"]["number"] == 2
    assert events[page].at == T0 + timedelta(minutes=65)
    assert events[ack].payload["pages"][0]["pages"] == 2
    assert [e.at for e in events] == sorted(e.at for e in events)
    state, later = paged(state, 200)
    assert later == []


def test_a_customer_message_comes_after_what_fell_due_before_it() -> None:
    state, fired = paged(new_case(), 61)
    assert len(fired) == 1
    update = apply_message(state, threaded("m-2", at=T0 + timedelta(minutes=65.05)), RULES)
    kinds = [e.type for e in update.events]
    assert kinds.index("case.escalated") < kinds.index("message.appended"), kinds
    assert [e.at for e in update.events] == sorted(e.at for e in update.events)


def test_an_acknowledgement_just_after_the_first_page_fell_due_is_accepted() -> None:
    # the timer has not fired the breach's first page yet; the agent saw it coming
    state, events = act(new_case(), action(9, "ana", "acknowledge", minutes=60.05))
    kinds = [e.type for e in events]
    assert "action.rejected" not in kinds, kinds
    assert kinds.index("sla.breached") < kinds.index("case.escalated")
    assert kinds.index("case.escalated") < kinds.index("case.acknowledged_by_agent")
    [page] = state.open_pages
    assert page.acknowledged_by == "ana" and page.pages == 1
    state, later = paged(state, 200)
    assert later == []
