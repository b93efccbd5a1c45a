"""Queue and agent endpoints: me and my presence, queues and their cases, pull the next case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse

from queues.desk import actions, authz
from queues.desk.auth import CurrentAgent
from queues.desk.bodies import UNPROCESSABLE, PresenceBody, QueueSettingsBody
from queues.desk.choose import Candidate, required_skills, why_not
from queues.desk.context import DeskContext, desk
from queues.desk.directory import Agent, DirectoryError, Presence
from queues.desk.gateway import PublishError, Verdict
from queues.desk.reads import CaseFilter, case_json
from queues.desk.routes_cases import verdict_response
from schemas import CaseStatus, Priority

router = APIRouter(prefix="/v1", tags=["desk"])

Desk = Annotated[DeskContext, Depends(desk)]

MAX_PAGE = 200
PULL_ATTEMPTS = 5
"""How many cases `next` tries when others claim them first."""


def _agent_json(context: DeskContext, agent: Agent) -> dict[str, Any]:
    load = context.reads.loads([agent.name])[agent.name]
    return {**agent.to_json(), "load": dict(load)}


@router.get("/me", summary="Who I am: role, queues, skills, capacity, presence, load")
def me(agent: CurrentAgent, context: Desk) -> dict[str, Any]:
    """The calling agent, with their active cases counted by channel."""
    return _agent_json(context, agent)


_PRESENCE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Recorded: the agent as they are now."},
    202: {"description": "Published; the presence projection had not applied it in time."},
}


async def _presence_response(
    context: DeskContext, name: str, presence: Presence, by: Agent
) -> Response:
    try:
        agent = await actions.set_presence(context, by, name, presence)
    except PublishError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from error
    if agent is None:
        return JSONResponse(
            {"outcome": "pending", "detail": f"presence of {name} published, not applied yet"},
            status_code=status.HTTP_202_ACCEPTED,
        )
    return JSONResponse(_agent_json(context, agent))


@router.put("/me/presence", summary="Set my presence", responses=_PRESENCE_ANSWERS)
async def set_my_presence(body: PresenceBody, agent: CurrentAgent, context: Desk) -> Response:
    """online takes new cases; away keeps mine but takes no new ones; offline gives mine back."""
    return await _presence_response(context, agent.name, body.presence, agent)


@router.post("/me/heartbeat", summary="I am still here (keeps my presence)")
def heartbeat(agent: CurrentAgent, context: Desk) -> dict[str, Any]:
    """Send one at least every `timeout_seconds` / 3; silent agents go offline after the timeout.

    An open event stream (`/v1/events`) counts as a heartbeat too.
    """
    context.directory.heartbeat(agent.name)
    return {
        "presence": agent.presence.value,
        "timeout_seconds": context.presence_timeout_seconds,
    }


@router.get("/me/cases", summary="My cases, most urgent first")
def my_cases(agent: CurrentAgent, context: Desk) -> dict[str, Any]:
    """The unresolved cases I own (including assignments I have yet to accept)."""
    return {"cases": [case_json(row) for row in context.reads.owned(agent.name)]}


@router.get("/agents", summary="Agents of the queues I see")
def agents(agent: CurrentAgent, context: Desk) -> dict[str, Any]:
    """Agents who share a queue with me (admins: all), with presence and load."""
    found = [other for other in context.directory.agents() if authz.shares_a_queue(agent, other)]
    loads = context.reads.loads([other.name for other in found])
    return {"agents": [{**other.to_json(), "load": dict(loads[other.name])} for other in found]}


@router.put(
    "/agents/{name}/presence",
    summary="Set an agent's presence (self, or leads)",
    responses=_PRESENCE_ANSWERS,
)
async def set_presence(
    name: str, body: PresenceBody, agent: CurrentAgent, context: Desk
) -> Response:
    """Leads and admins may set the presence of agents in their queues (e.g. end a shift)."""
    return await _presence_response(context, name, body.presence, agent)


@router.get("/queues", summary="My queues, with their settings and counts")
def queues(agent: CurrentAgent, context: Desk) -> dict[str, Any]:
    """The queues I may see, how they hand out cases, and how many cases wait in them."""
    visible = [q for q in context.directory.queues() if agent.sees(q.name)]
    counts = context.reads.queue_counts([q.name for q in visible], datetime.now(UTC))
    return {"queues": [{**q.to_json(), **counts[q.name]} for q in visible]}


@router.patch("/queues/{queue}", summary="Change a queue's settings (admins)")
def configure_queue(
    queue: str, body: QueueSettingsBody, agent: CurrentAgent, context: Desk
) -> dict[str, Any]:
    """Strategy, mode, required skills and the accept timeout of pushed assignments."""
    authz.require_admin(agent, "changing a queue")
    try:
        settings = context.directory.configure_queue(
            queue,
            strategy=body.strategy,
            mode=body.mode,
            skills=body.skills,
            accept_timeout_seconds=body.accept_timeout_seconds,
        )
    except DirectoryError as error:
        raise HTTPException(UNPROCESSABLE, str(error)) from error
    return settings.to_json()


@router.get("/queues/{queue}/cases", summary="A queue's cases, most urgent first")
def queue_cases(
    queue: str,
    agent: CurrentAgent,
    context: Desk,
    case_status: Annotated[
        list[CaseStatus] | None,
        Query(alias="status", description="Statuses (repeatable); default: all unresolved."),
    ] = None,
    assignee: Annotated[
        str | None, Query(description="An agent name, `me`, or `none` for unowned cases.")
    ] = None,
    priority: Priority | None = None,
    channel: str | None = None,
    tag: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Ordered by priority, then SLA due time (closest to breaching first), then age."""
    if context.directory.queue(queue) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no queue {queue!r}")
    authz.require_queue(agent, queue)
    where = CaseFilter(
        statuses=[s.value for s in case_status] if case_status else None,
        assignee=agent.name if assignee == "me" else assignee,
        priority=priority.value if priority else None,
        channel=channel,
        tag=tag,
    )
    total, rows = context.reads.list_cases(queue, where, limit=limit, offset=offset)
    return {
        "queue": queue,
        "total": total,
        "limit": limit,
        "offset": offset,
        "cases": [case_json(row) for row in rows],
    }


@router.post(
    "/queues/{queue}/next",
    summary="Claim the most urgent case I can take (pull mode)",
    responses={204: {"description": "Nothing in the queue I can take now."}},
)
async def pull_next(queue: str, agent: CurrentAgent, context: Desk) -> Response:
    """Claim the first waiting case I have the skills and the capacity for; 204 if none."""
    settings = context.directory.queue(queue)
    if settings is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no queue {queue!r}")
    authz.require_queue(agent, queue)
    me_now = Candidate(agent, context.reads.loads([agent.name])[agent.name])
    tried = 0
    for row in context.reads.waiting(queue, limit=50):
        if why_not(me_now, row.channel, required_skills(settings, row.tags), online=False):
            continue
        outcome = await actions.claim(
            context,
            agent,
            row.case_id,
            reason=f"pulled as the most urgent case of {queue} {agent.name} can take",
        )
        if outcome.verdict is not Verdict.REJECTED:
            return verdict_response(context, outcome)
        tried += 1
        if tried >= PULL_ATTEMPTS:
            break
    return Response(status_code=status.HTTP_204_NO_CONTENT)
