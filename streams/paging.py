"""On-call paging in stage C: remember the pages a case sent, acknowledge them, resolve them.

The clock engine fires paging steps (`rules._escalation`): each firing is a `case.escalated`
event whose `escalation.page` the reply service delivers. Here stage C keeps the case's open
pages (one per armed step: its provider incident), so that

- an `acknowledge` action stops the repeats (`clocks.acknowledged`) and is recorded as
  `case.acknowledged_by_agent` with who and when, listing the pages it acknowledges (the
  reply service acknowledges them at the providers);
- a claim or a resolution writes `case.pages_resolved` with every open page (the reply
  service resolves them at the providers) and forgets them.

Every event id derives from the case and the action, so a replay writes the same records.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rules import clocks
from schemas import AgentAction, AgentActionType, CaseEvent, CaseEventType
from schemas.ids import event_id_for
from streams.case_state import OPEN_PAGES_KEPT, CaseState, OpenPage
from streams.ownership import Refusal

if TYPE_CHECKING:
    from streams.sla import ClockChange

__all__ = [
    "acknowledge",
    "acknowledgement_payload",
    "after_action",
    "dedup_key",
    "note_page",
    "refusal",
]


def dedup_key(case_id: str, run: str) -> str:
    """The provider's dedup key (PagerDuty) / alias (Opsgenie) of one page run of a case.

    It starts with the case id, so a provider's webhook leads back to the case.
    """
    return f"{case_id}/{run}"[:255]


def case_of(key: str) -> str:
    """The case id a dedup key belongs to (what `dedup_key` put first)."""
    return key.partition("/")[0]


def note_page(state: CaseState, page: dict[str, Any], at: datetime) -> None:
    """Remember a page the clock engine just fired (`escalation.page` of its event).

    The state's page list and pages are replaced, never changed in place: the timer works
    on a shallow copy of the case's state (see `streams.casework.fire_clocks`).
    """
    key = dedup_key(state.case_id, str(page["run"]))
    targets = [dict(target) for target in page.get("targets") or []]
    for index, open_page in enumerate(state.open_pages):
        if open_page.key == key:
            known = {target["name"] for target in open_page.targets}
            added = [target for target in targets if target["name"] not in known]
            updated = open_page.model_copy(
                update={
                    "targets": [*open_page.targets, *added],
                    "pages": open_page.pages + 1,
                }
            )
            state.open_pages = [*state.open_pages[:index], updated, *state.open_pages[index + 1 :]]
            return
    state.open_pages = [
        *state.open_pages,
        OpenPage(key=key, pager=str(page["pager"]), targets=targets, first_paged_at=at, pages=1),
    ][-OPEN_PAGES_KEPT:]


def refusal(state: CaseState, action: AgentAction) -> Refusal | None:
    """An acknowledgement needs a page waiting for one (else `not_paging`, nothing changes)."""
    if action.type is not AgentActionType.ACKNOWLEDGE:
        return None
    if any(page.acknowledged_by is None for page in state.open_pages):
        return None
    return Refusal(
        "not_paging", f"acknowledge by {action.agent_id}: no page is waiting for an acknowledgement"
    )


def acknowledge(state: CaseState, action: AgentAction) -> tuple[list[ClockChange], str]:
    """Mark the waiting pages acknowledged by the agent; the repeats stop with the clock change."""
    names = []
    for page in state.open_pages:
        if page.acknowledged_by is None:
            page.acknowledged_by = action.agent_id
            page.acknowledged_at = action.at
            page.acknowledged_action = action.action_id
            names.append(page.pager)
    pagers = ", ".join(dict.fromkeys(names))
    return [clocks.acknowledged], f"pages of {pagers} acknowledged by {action.agent_id}"


def acknowledgement_payload(state: CaseState, action: AgentAction) -> dict[str, Any]:
    """What `case.acknowledged_by_agent` says: who, when, and the pages it acknowledged."""
    return {
        "agent": action.agent_id,
        "at": action.at.isoformat(),
        "note": action.reason,
        "pages": [
            _page_json(page)
            for page in state.open_pages
            if page.acknowledged_action == action.action_id
        ],
        "action": action.model_dump(mode="json"),
    }


def after_action(state: CaseState, action: AgentAction, reason: str) -> list[CaseEvent]:
    """After a claim or a resolution: `case.pages_resolved` with every open page, forgotten."""
    if action.type not in (AgentActionType.CLAIM, AgentActionType.RESOLVE):
        return []
    if not state.open_pages:
        return []
    pages = [_page_json(page) for page in state.open_pages]
    state.open_pages = []
    kind = CaseEventType.CASE_PAGES_RESOLVED.value
    return [
        CaseEvent(
            event_id=event_id_for(state.case_id, kind, action.action_id),
            case_id=state.case_id,
            type=kind,
            at=action.at,
            reason=f"{len(pages)} page(s) resolved: {reason}",
            payload={"by": action.agent_id, "action": action.type.value, "pages": pages},
        )
    ]


def _page_json(page: OpenPage) -> dict[str, Any]:
    return {
        "key": page.key,
        "pager": page.pager,
        "targets": page.targets,
        "pages": page.pages,
        "acknowledged_by": page.acknowledged_by,
        "acknowledged_at": page.acknowledged_at.isoformat() if page.acknowledged_at else None,
    }
