"""Case endpoints: read a case, and every write (claim, reply, status, ...) as an agent action."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Response, status
from fastapi.responses import JSONResponse

from queues.desk.auth import CurrentAgent, require_lead, require_queue
from queues.desk.bodies import UNPROCESSABLE, AssignBody, StatusBody, TextBody, TransferBody
from queues.desk.context import DeskContext, desk
from queues.desk.directory import Agent
from queues.desk.gateway import Outcome, Verdict
from queues.desk.reads import case_json
from queues.models import CaseRow
from schemas import AgentAction, AgentActionType

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


def visible_case(context: DeskContext, agent: Agent, case_id: str) -> CaseRow:
    """The case, if it exists (404) and the agent may see it (403)."""
    row = context.reads.case(case_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {case_id}")
    if row.assignee != agent.name:
        require_queue(agent, row.queue)
    return row


@router.get("/{case_id}", summary="A case: cross-channel history, SLA clocks, assignments")
def get_case(case_id: str, agent: CurrentAgent, context: Desk) -> dict[str, Any]:
    """The case: messages on every channel, events, SLA clocks, the customer's other cases."""
    visible_case(context, agent, case_id)
    detail = context.reads.history(case_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {case_id}")
    return detail


async def act(
    context: DeskContext,
    agent: Agent,
    case_id: str,
    kind: AgentActionType,
    idempotency_key: str | None,
    **fields: Any,
) -> Response:
    """Publish an action for the case and answer with the stream's verdict."""
    visible_case(context, agent, case_id)
    action = AgentAction(
        action_id=idempotency_key or str(uuid.uuid4()),
        case_id=case_id,
        agent_id=agent.name,
        type=kind,
        at=datetime.now(UTC),
        **fields,
    )
    return verdict_response(context, await context.gateway.submit(action))


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
    return await act(context, agent, case_id, AgentActionType.CLAIM, key)


@router.post("/{case_id}/release", responses=_ACTED, summary="Give the case back to its queue")
async def release(
    case_id: str, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """Release your case (leads: anyone's case) back to the queue."""
    return await act(
        context, agent, case_id, AgentActionType.RELEASE, key, override=agent.may_reassign
    )


@router.post("/{case_id}/reply", responses=_ACTED, summary="Reply to the customer")
async def reply(
    case_id: str, body: TextBody, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """A public reply, sent on the case's channel (leads: on anyone's case too)."""
    return await act(
        context,
        agent,
        case_id,
        AgentActionType.REPLY,
        key,
        text=body.text,
        override=agent.may_reassign,
    )


@router.post("/{case_id}/notes", responses=_ACTED, summary="Add an internal note")
async def note(
    case_id: str, body: TextBody, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """An internal note: agents see it, the customer does not."""
    return await act(
        context,
        agent,
        case_id,
        AgentActionType.NOTE,
        key,
        text=body.text,
        override=agent.may_reassign,
    )


@router.post("/{case_id}/status", responses=_ACTED, summary="Set the status")
async def set_status(
    case_id: str, body: StatusBody, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """Set new, open, pending or waiting_on_customer (pauses the SLA clocks); leads: any case."""
    return await act(
        context,
        agent,
        case_id,
        AgentActionType.STATUS,
        key,
        status=body.status,
        override=agent.may_reassign,
    )


@router.post("/{case_id}/transfer", responses=_ACTED, summary="Transfer to a queue or an agent")
async def transfer(
    case_id: str,
    body: TransferBody,
    agent: CurrentAgent,
    context: Desk,
    key: IdempotencyKey = None,
) -> Response:
    """Move the case to another queue (it waits there unowned) and/or give it to an agent."""
    if body.to_agent is not None:
        target = context.directory.agent(body.to_agent)
        if target is None:
            raise HTTPException(UNPROCESSABLE, f"no agent {body.to_agent!r}")
        row = context.reads.case(case_id)
        queue = body.queue or (row.queue if row is not None else None)
        if not target.sees(queue):
            raise HTTPException(
                UNPROCESSABLE,
                f"agent {target.name} is not a member of queue {queue!r}",
            )
    if body.queue is not None and context.directory.queue(body.queue) is None:
        raise HTTPException(
            UNPROCESSABLE,
            f"no queue {body.queue!r} (a queue exists once a case is routed to it "
            "or an admin creates it with `escalator agents queue`)",
        )
    return await act(
        context,
        agent,
        case_id,
        AgentActionType.TRANSFER,
        key,
        queue=body.queue,
        to_agent=body.to_agent,
        override=agent.may_reassign,
    )


@router.post("/{case_id}/assign", responses=_ACTED, summary="Assign to an agent (leads)")
async def assign(
    case_id: str, body: AssignBody, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """A lead assigns the case; the agent accepts by claiming it. Reassigns an owned case."""
    require_lead(agent, "assigning a case")
    target = context.directory.agent(body.to_agent)
    if target is None:
        raise HTTPException(UNPROCESSABLE, f"no agent {body.to_agent!r}")
    return await act(
        context,
        agent,
        case_id,
        AgentActionType.ASSIGN,
        key,
        to_agent=body.to_agent,
        override=True,
    )


@router.post("/{case_id}/resolve", responses=_ACTED, summary="Resolve")
async def resolve(
    case_id: str, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """Resolve the case: the resolution clock is met, the owner's capacity frees up."""
    return await act(
        context, agent, case_id, AgentActionType.RESOLVE, key, override=agent.may_reassign
    )


@router.post("/{case_id}/reopen", responses=_ACTED, summary="Reopen a resolved case")
async def reopen(
    case_id: str, agent: CurrentAgent, context: Desk, key: IdempotencyKey = None
) -> Response:
    """Reopen a resolved case (409 if it is not resolved)."""
    return await act(context, agent, case_id, AgentActionType.REOPEN, key)
