"""Case endpoints: read a case, and every write (claim, reply, status, ...) as an agent action.

The writes parse JSON and render the outcome; what they do, and who may, is
`queues.desk.actions` (which the console calls too).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Response, status
from fastapi.responses import JSONResponse

from queues.desk import actions
from queues.desk.auth import CurrentAgent
from queues.desk.bodies import (
    AcknowledgeBody,
    AssignBody,
    EscalateBody,
    StatusBody,
    TextBody,
    TransferBody,
)
from queues.desk.context import DeskContext, desk
from queues.desk.gateway import Outcome, Verdict
from queues.desk.reads import case_json

router = APIRouter(prefix="/v1/cases", tags=["cases"])

Desk = Annotated[DeskContext, Depends(desk)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=100,
        description="Retry-safe key: the same key is the same action, applied once.",
    ),
]

_ACTED: dict[int | str, dict[str, Any]] = {
    200: {"description": "Applied: the case as it is now."},
    202: {"description": "Published; the stream's verdict did not reach the store in time."},
    403: {"description": "Not a member of the case's queue, or not a lead."},
    404: {"description": "No such case."},
    409: {"description": "Refused by the stream: the case changed (e.g. someone else owns it)."},
}
_CHECKED: dict[int | str, dict[str, Any]] = {
    **_ACTED,
    403: {"description": "Not a member of the case's or the destination's queue, or not a lead."},
    422: {"description": "No such queue or agent, or the agent is not a member of the queue."},
}


@router.get("/{case_id}", summary="A case: cross-channel history, SLA clocks, assignments")
def get_case(case_id: str, agent: CurrentAgent, context: Desk) -> dict[str, Any]:
    """The case: messages on every channel, events, SLA clocks, the customer's other cases."""
    actions.visible_case(context, agent, case_id)
    detail = context.reads.history(case_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {case_id}")
    return detail


def verdict_response(context: DeskContext, outcome: Outcome) -> Response:
    """200 with the case, 409 with the reason, or 202 while the verdict is pending."""
    action = outcome.action
    body: dict[str, Any] = {
        "action_id": action.action_id,
        "type": action.type.value,
        "outcome": outcome.verdict.value,
        "reason": outcome.reason,
    }
    if outcome.verdict is Verdict.REJECTED:
        body.update({"code": outcome.code, "owner": outcome.owner, "detail": outcome.reason})
        return JSONResponse(body, status_code=status.HTTP_409_CONFLICT)
    if outcome.verdict is Verdict.PENDING:
        return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED)
    row = context.reads.case(action.case_id)
    if row is not None:
        body["case"] = case_json(row)
    return JSONResponse(body)


@router.post("/{case_id}/claim", responses=_ACTED, summary="Claim (or accept an assignment)")
async def claim(
    case_id: str, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """Take the case. 409 if someone else owns it; claiming an assignment to you accepts it."""
    return verdict_response(context, await actions.claim(context, agent, case_id, action_id=key))


@router.post("/{case_id}/release", responses=_ACTED, summary="Give the case back to its queue")
async def release(
    case_id: str, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """Release your case (leads: anyone's case) back to the queue."""
    return verdict_response(context, await actions.release(context, agent, case_id, action_id=key))


@router.post("/{case_id}/reply", responses=_ACTED, summary="Reply to the customer")
async def reply(
    case_id: str, body: TextBody, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """A public reply, sent on the case's channel (leads: on anyone's case too)."""
    outcome = await actions.reply(context, agent, case_id, body.text, action_id=key)
    return verdict_response(context, outcome)


@router.post("/{case_id}/notes", responses=_ACTED, summary="Add an internal note")
async def note(
    case_id: str, body: TextBody, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """An internal note: agents see it, the customer does not."""
    outcome = await actions.note(context, agent, case_id, body.text, action_id=key)
    return verdict_response(context, outcome)


@router.post("/{case_id}/status", responses=_ACTED, summary="Set the status")
async def set_status(
    case_id: str, body: StatusBody, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """Set new, open, pending or waiting_on_customer (pauses the SLA clocks); leads: any case."""
    outcome = await actions.set_status(context, agent, case_id, body.status, action_id=key)
    return verdict_response(context, outcome)


@router.post("/{case_id}/transfer", responses=_CHECKED, summary="Transfer to a queue or an agent")
async def transfer(
    case_id: str,
    body: TransferBody,
    agent: CurrentAgent,
    context: Desk,
    key: IdempotencyKey = None,
) -> Response:
    """Move the case to another of your queues (it waits there unowned) and/or give it to an
    agent of its queue."""
    outcome = await actions.transfer(
        context, agent, case_id, queue=body.queue, to_agent=body.to_agent, action_id=key
    )
    return verdict_response(context, outcome)


@router.post("/{case_id}/assign", responses=_CHECKED, summary="Assign to an agent (leads)")
async def assign(
    case_id: str, body: AssignBody, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """A lead assigns the case to an agent of its queue, who accepts by claiming it.
    Reassigns an owned case."""
    outcome = await actions.assign(context, agent, case_id, body.to_agent, action_id=key)
    return verdict_response(context, outcome)


@router.post("/{case_id}/resolve", responses=_ACTED, summary="Resolve")
async def resolve(
    case_id: str, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """Resolve the case: the resolution clock is met, the owner's capacity frees up."""
    return verdict_response(context, await actions.resolve(context, agent, case_id, action_id=key))


@router.post("/{case_id}/reopen", responses=_ACTED, summary="Reopen a resolved case")
async def reopen(
    case_id: str, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """Reopen a resolved case (409 if it is not resolved)."""
    return verdict_response(context, await actions.reopen(context, agent, case_id, action_id=key))


_ESCALATED: dict[int | str, dict[str, Any]] = {
    **_ACTED,
    403: {"description": "An agent escalating a case of a queue they are not a member of."},
    422: {"description": "No reason, nowhere to go, or no such queue."},
}


@router.post("/{case_id}/escalate", responses=_ESCALATED, summary="Escalate to a queue/priority")
async def escalate(
    case_id: str,
    body: EscalateBody,
    agent: CurrentAgent,
    context: Desk,
    key: IdempotencyKey = None,
) -> Response:
    """Escalate the case to a queue and/or a priority, with a reason; recorded as
    `case.escalated` with you and the reason. Agents: cases of their queues; leads: any case.
    A priority never falls by an escalation."""
    outcome = await actions.escalate(
        context,
        agent,
        case_id,
        body.reason,
        queue=body.queue,
        priority=body.priority,
        action_id=key,
    )
    return verdict_response(context, outcome)


@router.post("/{case_id}/acknowledge", responses=_ACTED, summary="Acknowledge the case's pages")
async def acknowledge(
    case_id: str,
    agent: CurrentAgent,
    context: Desk,
    body: AcknowledgeBody | None = None,
    key: IdempotencyKey = None,
) -> Response:
    """Acknowledge the pages sent for the case: their repeats stop, and the providers are told.
    Recorded as `case.acknowledged_by_agent` with you and the time; 409 if nothing is paging."""
    note = body.note if body is not None else None
    outcome = await actions.acknowledge(context, agent, case_id, note=note, action_id=key)
    return verdict_response(context, outcome)
