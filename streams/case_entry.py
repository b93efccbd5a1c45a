"""Stage C's first look at a threaded message: can the case stage B chose take it?

A case that does not exist here (a quoted reference to an unknown case) or that was
resolved longer ago than the reopen window cannot: the customer's message moves to the
case's successor, a new case whose id is derived from the customer and the old case, so
every later message sent towards the old case lands in the same successor; the customer's
history then counts the old case among their earlier cases when it is theirs. Answers and
automatic messages never open a case: for those the move is a recorded drop instead.
"""

from __future__ import annotations

from schemas import CaseStatus
from schemas.ids import successor_case_id
from streams.case_state import CaseState
from streams.records import HistoryRecord, ThreadedMessage
from streams.threader import NotThreaded, ThreadingPolicy, is_auto_reply, is_forum_answer


def entry_for(
    state: CaseState | None, threaded: ThreadedMessage, policy: ThreadingPolicy
) -> ThreadedMessage | NotThreaded | None:
    """None when the case takes the message; otherwise the message moved, or why it is dropped."""
    message = threaded.message
    passive = is_auto_reply(message) or is_forum_answer(message)
    if state is None:
        if threaded.opens_case:
            return None
        if passive:
            return NotThreaded(
                "case_unknown", f"{message.message_key}: case {threaded.case_id} is not known here"
            )
        return _moved(threaded, f"case {threaded.case_id} is not known: new case")
    if state.status is not CaseStatus.RESOLVED or passive:
        return None
    resolved_at = state.resolved_at
    if resolved_at is not None and threaded.arrived_at - resolved_at <= policy.reopen_window:
        return None  # reopens (apply_message)
    return _moved(
        threaded,
        f"case {threaded.case_id} was resolved more than the reopen window "
        f"({policy.reopen_window}) ago: new case",
        left=state,
    )


def _moved(
    threaded: ThreadedMessage, why: str, left: CaseState | None = None
) -> ThreadedMessage | NotThreaded:
    successor = threaded.successor_case_id
    if successor is None or successor == threaded.case_id:
        return NotThreaded("no_successor", f"{threaded.message.message_key}: {why}")
    return threaded.model_copy(
        update={
            "case_id": successor,
            "opens_case": True,
            "evidence": f"{threaded.evidence}; {why} ({successor})",
            "successor_case_id": successor_case_id(threaded.customer_id, successor),
            "history": _history_with(threaded, left),
        }
    )


def _history_with(threaded: ThreadedMessage, left: CaseState | None) -> HistoryRecord | None:
    """The history of a message that left the customer's own case `left` for a new one.

    Stage B did not count the case the message was threaded into; once the message opens
    its successor instead, that case is one of the customer's earlier cases.
    """
    history = threaded.history
    if history is None or left is None or left.customer_id != threaded.customer_id:
        return history
    recent = threaded.arrived_at - left.opened_at <= history.window
    return history.model_copy(
        update={
            "cases": history.cases + 1,
            "recent_cases": history.recent_cases + (1 if recent else 0),
        }
    )
