"""Stage C decides who owns a case: a claim on someone else's case is refused, not overwritten."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rules import default_ruleset
from schemas import AgentAction, CaseStatus
from streams.actions import apply_action
from streams.case_state import CaseState
from streams.casework import apply_message
from tests.streams.test_casework import T0, threaded

RULESET = default_ruleset()


def new_case() -> CaseState:
    return apply_message(None, threaded("m-1", opens=True), RULESET).state


def action(number: int, agent: str, kind: str, **fields: Any) -> AgentAction:
    return AgentAction(
        action_id=f"a-{number}",
        case_id="C-ABCDEFGHIJ",
        agent_id=agent,
        type=kind,  # type: ignore[arg-type]
        at=T0 + timedelta(minutes=number),
        **fields,
    )


def run(state: CaseState, *actions: AgentAction) -> tuple[CaseState, list[str]]:
    """Apply actions in order; the state and each action's first event type and reason."""
    outcomes = []
    for each in actions:
        update = apply_action(state, each, RULESET)
        assert update is not None
        state = update.state
        outcomes.append(f"{update.events[0].type}: {update.events[0].reason}")
    return state, outcomes


def test_second_claim_is_rejected_with_the_owner() -> None:
    state, outcomes = run(new_case(), action(1, "ana", "claim"), action(2, "bo", "claim"))
    assert state.claimed_by == "ana"
    assert outcomes == [
        "case.claimed: claimed by ana",
        "action.rejected: claim by bo: the case is owned by ana",
    ]
    update = apply_action(state, action(3, "bo", "reply", text="hi"), RULESET)
    assert update is not None and update.events[0].payload["code"] == "owned_by_other"
    assert update.routed is None  # nothing republished
    assert len(update.state.messages) == len(state.messages)


def test_rejection_is_idempotent_on_the_action_id() -> None:
    state, _ = run(new_case(), action(1, "ana", "claim"), action(2, "bo", "claim"))
    again = apply_action(state, action(2, "bo", "claim"), RULESET)
    assert again is not None and not again.changed


def test_notes_are_open_to_everyone_and_the_owner_works_the_case() -> None:
    state, outcomes = run(
        new_case(),
        action(1, "ana", "claim"),
        action(2, "bo", "note", text="I know this customer"),
        action(3, "ana", "reply", text="On it"),
        action(4, "ana", "resolve"),
    )
    assert [o.split(":")[0] for o in outcomes] == [
        "case.claimed",
        "message.appended",
        "message.appended",
        "case.resolved",
    ]
    assert state.status is CaseStatus.RESOLVED
    _, [claim_resolved] = run(state, action(5, "bo", "claim"))
    assert claim_resolved == "action.rejected: claim by bo: the case is resolved"


def test_a_lead_reassigns_with_override_and_the_assignee_accepts() -> None:
    state, outcomes = run(
        new_case(),
        action(1, "ana", "claim"),
        action(2, "lee", "transfer", to_agent="bo"),
        action(3, "lee", "transfer", to_agent="cy", override=True),
        action(4, "lee", "assign", to_agent="dee", override=True),
    )
    assert outcomes[1].startswith("action.rejected")
    assert outcomes[2] == "case.transferred: transferred to cy by lee"
    assert state.claimed_by == "dee" and state.assignment_pending
    state, [accepted] = run(state, action(5, "dee", "claim"))
    assert accepted == "case.claimed: accepted by dee"
    assert not state.assignment_pending


def test_a_lead_works_another_agents_case_with_override_and_the_owner_stays() -> None:
    state, outcomes = run(
        new_case(),
        action(1, "ana", "claim"),
        action(2, "lee", "reply", text="Lead here"),
        action(3, "lee", "reply", text="Lead here", override=True),
        action(4, "lee", "status", status="pending", override=True),
        action(5, "lee", "resolve", override=True),
    )
    assert outcomes[1] == "action.rejected: reply by lee: the case is owned by ana"
    assert [o.split(":")[0] for o in outcomes[2:]] == [
        "message.appended",
        "case.status_changed",
        "case.resolved",
    ]
    assert state.claimed_by == "ana" and state.status is CaseStatus.RESOLVED


def test_assigner_release_only_applies_to_the_expected_owner() -> None:
    state, outcomes = run(
        new_case(),
        action(1, "escalator", "assign", to_agent="ana"),
        action(2, "ana", "claim"),
        action(3, "escalator", "release", expected_owner="bo", reason="bo went offline"),
        action(4, "escalator", "release", expected_owner="ana", reason="ana went offline"),
    )
    assert outcomes[0] == "case.assigned: assigned to ana by escalator"
    assert outcomes[2].startswith("action.rejected: release by escalator expected owner bo")
    assert outcomes[3] == "case.released: ana's case released by escalator: ana went offline"
    assert state.claimed_by is None


def test_transfer_to_a_queue_puts_the_case_back_unowned() -> None:
    state, _ = run(
        new_case(), action(1, "ana", "claim"), action(2, "ana", "transfer", queue="tier2")
    )
    assert (state.queue, state.claimed_by) == ("tier2", None)
    update = apply_action(state, action(3, "ana", "release"), RULESET)
    assert update is not None and update.events[0].payload["code"] == "not_owned"


def test_the_snapshot_carries_the_owner() -> None:
    state, _ = run(new_case(), action(1, "escalator", "assign", to_agent="ana"))
    update = apply_action(state, action(2, "ana", "claim"), RULESET)
    assert update is not None and update.routed is not None
    assert (update.routed.assignee, update.routed.assignment_pending) == ("ana", False)
