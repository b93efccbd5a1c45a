"""`GET /v1/customers/{customer_id}/history`: the customer's 360° history, a page at a time.

Every message and reply across all the customer's cases and channels (and those of the
customers merged with them), with escalations and promises, in time order (`queues.history`).
Who may read it is `authz.see_customer`: whoever may see one of the customer's cases.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from queues.desk import authz
from queues.desk.auth import CurrentAgent
from queues.desk.context import DeskContext, desk
from queues.desk.directory import Agent
from queues.history import MAX_PAGE, BadCursorError, HistoryPage, case_places, customer_group
from queues.history import history_page as read_page

router = APIRouter(prefix="/v1/customers", tags=["customers"])

Desk = Annotated[DeskContext, Depends(desk)]


def customer_history(
    context: DeskContext, agent: Agent, customer_id: str, *, cursor: str | None, limit: int
) -> HistoryPage:
    """A page of the history, if the agent may read it (`RefusedError` otherwise). Blocking."""
    with context.reads.sessions() as session:
        places = case_places(session, customer_group(session, customer_id))
        authz.see_customer(agent, places, customer_id)
        return read_page(session, customer_id, cursor=cursor, limit=limit)


@router.get(
    "/{customer_id:path}/history",
    summary="The customer's history across all their cases and channels",
    responses={
        404: {"description": "No such customer, or none of their cases is in your queues."},
        422: {"description": "The cursor is not one this endpoint gave."},
    },
)
async def history(
    customer_id: str,
    agent: CurrentAgent,
    context: Desk,
    cursor: Annotated[str | None, Query(max_length=8192)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """Entries oldest first: messages and replies (`kind: message`) and escalations,
    promises, resolutions and reopens (`kind: event`, with a summary of the payload), each
    with its case and channel. Pass `next_cursor` back as `cursor` for the next page."""
    try:
        page = await run_in_threadpool(
            customer_history, context, agent, customer_id, cursor=cursor, limit=limit
        )
    except BadCursorError as error:
        raise HTTPException(422, str(error)) from error
    return page.to_json()
