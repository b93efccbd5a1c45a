"""The console's action forms: status buttons, move, assign, reply and note.

Each form is read here and handed to `queues.desk.actions` (which the API calls too);
the answer is a redirect back to the case with the stream's verdict (post/redirect/get),
or the refusal's page with the status the API would answer with.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from queues.desk import actions
from queues.desk.authz import RefusedError
from queues.desk.console.pages import (
    MAX_REASON_CHARS,
    MAX_TEXT,
    PREFIX,
    STATUS_BUTTONS,
    Desk,
    refused_page,
    signed_in,
    to_login,
)
from queues.desk.directory import Agent
from queues.desk.gateway import Outcome, PublishError, Verdict
from schemas import AgentActionType, Priority

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.post("/cases/{case_id}/act")
async def act(
    request: Request,
    case_id: str,
    context: Desk,
    action: Annotated[str, Form(max_length=64)] = "",
    action_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A status button: do its action and come back to the case with the verdict."""
    if signed_in(request) is None:  # first: a caller without credentials learns nothing else
        return to_login()
    if action not in STATUS_BUTTONS:
        raise HTTPException(422, f"unknown action {action!r}")
    kind, fields, _words = STATUS_BUTTONS[action]

    def perform(agent: Agent, nonce: str) -> Awaitable[Outcome]:
        if kind is AgentActionType.STATUS:
            return actions.set_status(context, agent, case_id, fields["status"], action_id=nonce)
        return _SIMPLE[kind](context, agent, case_id, action_id=nonce)

    return await _submit(request, case_id, action, action_id, perform)


_SIMPLE: dict[AgentActionType, Callable[..., Awaitable[Outcome]]] = {
    AgentActionType.CLAIM: actions.claim,
    AgentActionType.RELEASE: actions.release,
    AgentActionType.RESOLVE: actions.resolve,
    AgentActionType.REOPEN: actions.reopen,
}
"""The status buttons' actions that take nothing but the case."""


@router.post("/cases/{case_id}/transfer")
async def transfer(
    request: Request,
    case_id: str,
    context: Desk,
    queue: Annotated[str, Form(max_length=100)] = "",
    to_agent: Annotated[str, Form(max_length=64)] = "",
    action_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Move the case to another of my queues (it waits there unowned) and/or to an agent."""
    if signed_in(request) is None:
        return to_login()
    if not (queue or to_agent):
        return _back(case_id, "transfer", "rejected", "choose a queue or an agent")

    def perform(agent: Agent, nonce: str) -> Awaitable[Outcome]:
        return actions.transfer(
            context,
            agent,
            case_id,
            queue=queue or None,
            to_agent=to_agent or None,
            action_id=nonce,
        )

    return await _submit(request, case_id, "transfer", action_id, perform)


@router.post("/cases/{case_id}/assign")
async def assign(
    request: Request,
    case_id: str,
    context: Desk,
    to_agent: Annotated[str, Form(max_length=64)] = "",
    action_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A lead gives the case to an agent of its queue, who accepts it by claiming."""
    if signed_in(request) is None:
        return to_login()
    if not to_agent:
        return _back(case_id, "assign", "rejected", "choose an agent")

    def perform(agent: Agent, nonce: str) -> Awaitable[Outcome]:
        return actions.assign(context, agent, case_id, to_agent, action_id=nonce)

    return await _submit(request, case_id, "assign", action_id, perform)


@router.post("/cases/{case_id}/reply")
async def reply(
    request: Request,
    case_id: str,
    context: Desk,
    text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    action_id: Annotated[str, Form(max_length=64)] = "",
    internal: Annotated[str, Form()] = "",
) -> Response:
    """Send a reply on the case's channel, or add an internal note."""
    if signed_in(request) is None:
        return to_login()
    write = actions.note if internal else actions.reply
    did = "note" if internal else "reply"
    if not text.strip():
        return _back(case_id, did, "rejected", "write something first")

    def perform(agent: Agent, nonce: str) -> Awaitable[Outcome]:
        return write(context, agent, case_id, text, action_id=nonce)

    return await _submit(request, case_id, did, action_id, perform)


@router.post("/cases/{case_id}/escalate")
async def escalate(
    request: Request,
    case_id: str,
    context: Desk,
    queue: Annotated[str, Form(max_length=100)] = "",
    priority: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
    action_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Escalate the case to a queue and/or a priority, with the reason the form requires."""
    if signed_in(request) is None:
        return to_login()
    if not (queue or priority):
        return _back(case_id, "escalate", "rejected", "choose a queue or a priority")
    if not reason.strip():
        return _back(case_id, "escalate", "rejected", "say why you escalate")
    if priority and priority not in {p.value for p in Priority}:
        raise HTTPException(422, f"unknown priority {priority!r}")

    def perform(agent: Agent, nonce: str) -> Awaitable[Outcome]:
        return actions.escalate(
            context,
            agent,
            case_id,
            reason,
            queue=queue or None,
            priority=Priority(priority) if priority else None,
            action_id=nonce,
        )

    return await _submit(request, case_id, "escalate", action_id, perform)


@router.post("/cases/{case_id}/acknowledge")
async def acknowledge(
    request: Request,
    case_id: str,
    context: Desk,
    action_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Acknowledge the case's pages: their repeats stop."""
    if signed_in(request) is None:
        return to_login()

    def perform(agent: Agent, nonce: str) -> Awaitable[Outcome]:
        return actions.acknowledge(context, agent, case_id, action_id=nonce)

    return await _submit(request, case_id, "acknowledge", action_id, perform)


async def _submit(
    request: Request,
    case_id: str,
    did: str,
    action_id: str,
    perform: Callable[[Agent, str], Awaitable[Outcome]],
) -> Response:
    """Do an action as the signed-in agent and come back to the case with its verdict."""
    agent = signed_in(request)
    if agent is None:
        return to_login()
    # The form's nonce with what was pressed: the same form submitted twice (a double
    # click, a resent POST) is one action, applied once; another button is another action.
    nonce = f"console-{action_id or uuid.uuid4().hex}-{did}"
    try:
        outcome = await perform(agent, nonce)
    except RefusedError as error:
        return refused_page(request, agent, error)
    except PublishError as error:
        return _back(case_id, did, "failed", f"Kafka did not take the action: {error}")
    reason = outcome.reason
    if outcome.verdict is Verdict.PENDING:
        reason = "sent; the stream has not confirmed it yet"
    return _back(case_id, did, outcome.verdict.value, reason)


def _back(case_id: str, did: str, verdict: str, reason: str) -> RedirectResponse:
    query = urlencode({"did": did, "verdict": verdict, "reason": reason[:MAX_REASON_CHARS]})
    return RedirectResponse(
        f"{PREFIX}/cases/{case_id}?{query}", status_code=status.HTTP_303_SEE_OTHER
    )
