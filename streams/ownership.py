"""Who may act on a case: stage C's ownership rules, the one place that decides them.

Stage C is the single writer of a case (its actions arrive keyed by case id, so one
worker applies them in order), which makes this check a compare-and-set: of two agents
claiming the same case at once, the first claim applied wins and the second is refused
with a reason, never silently overwriting the first.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import AgentAction, AgentActionType, CaseStatus

_OWNER_ONLY = frozenset(
    {
        AgentActionType.CLAIM,
        AgentActionType.RELEASE,
        AgentActionType.REPLY,
        AgentActionType.STATUS,
        AgentActionType.TRANSFER,
        AgentActionType.RESOLVE,
    }
)
"""Actions refused on a case someone else owns (unless a lead overrides). Notes are open."""


@dataclass(frozen=True)
class Refusal:
    """Why an action was refused: a stable `code` for programs and a sentence for people."""

    code: str
    reason: str


def refusal(owner: str | None, status: CaseStatus, action: AgentAction) -> Refusal | None:
    """The reason to refuse `action` on a case owned by `owner` in `status`, or None to apply it."""
    kind = action.type
    actor = action.agent_id
    if action.expected_owner is not None:
        if owner != action.expected_owner:
            return Refusal(
                "owner_changed",
                f"{kind.value} by {actor} expected owner {action.expected_owner}, "
                f"but the case is owned by {owner or 'nobody'}",
            )
        return None
    resolved = status is CaseStatus.RESOLVED
    if kind is AgentActionType.REOPEN and not resolved:
        return Refusal("not_resolved", f"reopen by {actor}: the case is not resolved")
    if resolved and kind in (
        AgentActionType.CLAIM,
        AgentActionType.ASSIGN,
        AgentActionType.ESCALATE,
        AgentActionType.ACKNOWLEDGE,
    ):
        return Refusal("resolved", f"{kind.value} by {actor}: the case is resolved")
    if kind is AgentActionType.RELEASE and owner is None:
        return Refusal("not_owned", f"release by {actor}: nobody owns the case")
    if action.override:
        return None
    if kind is AgentActionType.ASSIGN:
        if owner is not None and owner != action.to_agent:
            return Refusal(
                "owned_by_other", f"assign to {action.to_agent}: the case is owned by {owner}"
            )
        return None
    if kind in _OWNER_ONLY and owner is not None and owner != actor:
        return Refusal("owned_by_other", f"{kind.value} by {actor}: the case is owned by {owner}")
    return None
