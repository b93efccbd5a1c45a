"""The console's routes under `/console`: log in, my queue, a case, and the case's actions.

Pages are rendered on the server and work without JavaScript: every action is a form
that posts here and redirects back (post/redirect/get) with the stream's verdict.
`console.js` adds the live parts: SLA countdowns, and refreshing the queue and the case
from the desk's event stream. The token lives in an HttpOnly, SameSite=Strict cookie,
which the API also accepts, so the page's scripts can follow `/v1/events`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from queues.desk.auth import TOKEN_COOKIE
from queues.desk.console import views
from queues.desk.console.icons import CHANNEL_LABELS, channel_icon
from queues.desk.context import DeskContext, desk
from queues.desk.directory import Agent, Presence
from queues.desk.gateway import PublishError, Verdict
from queues.desk.routes_cases import visible_case
from queues.desk.routes_desk import record_presence
from schemas import AgentAction, AgentActionType, CaseStatus

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
PREFIX = "/console"
MAX_TEXT = 100_000
MAX_REASON_CHARS = 300

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(
    channel_icon=channel_icon, channel_labels=CHANNEL_LABELS, prefix=PREFIX
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Desk = Annotated[DeskContext, Depends(desk)]

STATUS_BUTTONS: dict[str, tuple[AgentActionType, dict[str, Any], str]] = {
    "claim": (AgentActionType.CLAIM, {}, "Claim"),
    "release": (AgentActionType.RELEASE, {}, "Release to queue"),
    "open": (AgentActionType.STATUS, {"status": CaseStatus.OPEN}, "Mark open"),
    "pending": (AgentActionType.STATUS, {"status": CaseStatus.PENDING}, "Mark pending"),
    "waiting_on_customer": (
        AgentActionType.STATUS,
        {"status": CaseStatus.WAITING_ON_CUSTOMER},
        "Waiting on customer",
    ),
    "resolve": (AgentActionType.RESOLVE, {}, "Resolve"),
    "reopen": (AgentActionType.REOPEN, {}, "Reopen"),
}
"""Status buttons: the form value, the action it publishes, and the button's words."""


def signed_in(request: Request) -> Agent | None:
    """The agent whose token the console cookie holds, if it is valid."""
    token = request.cookies.get(TOKEN_COOKIE)
    if not token:
        return None
    agent: Agent | None = request.app.state.directory.authenticate(token)
    return agent


def to_login() -> RedirectResponse:
    """Send the browser to the login page."""
    return RedirectResponse(f"{PREFIX}/login", status_code=status.HTTP_303_SEE_OTHER)


def same_origin(request: Request) -> bool:
    """False when a form post comes from another site (a second guard beside SameSite)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.url.netloc


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    """The console starts at my queue."""
    return RedirectResponse(f"{PREFIX}/queue", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    """The login form."""
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form(max_length=512)] = "") -> Response:
    """Check the token; on success keep it in an HttpOnly cookie and go to my queue."""
    agent = request.app.state.directory.authenticate(token.strip()) if token.strip() else None
    if agent is None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": "That token is not valid. Ask your lead for a new one."},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    response = RedirectResponse(f"{PREFIX}/queue", status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        TOKEN_COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    """Forget the token."""
    response = to_login()
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response


@router.post("/presence")
async def set_presence(
    request: Request,
    presence: Annotated[Presence, Form()],
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Set my presence: online takes new cases, away keeps mine, offline gives mine back."""
    agent = signed_in(request)
    if agent is None:
        return to_login()
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site form post refused")
    await record_presence(desk(request), agent.name, presence, agent)
    target = back if back.startswith(f"{PREFIX}/") else f"{PREFIX}/queue"
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, context: Desk) -> Response:
    """My queue: the cases of my queues and my own, most urgent first."""
    agent = signed_in(request)
    if agent is None:
        return to_login()
    items = await asyncio.to_thread(views.my_queue, context.reads.sessions, agent)
    return templates.TemplateResponse(
        request,
        "queue.html",
        {
            "agent": agent,
            "items": items,
            "version": views.queue_version(items),
            "now": views.now_rfc3339(),
        },
    )


@router.get("/queue/rows", response_class=HTMLResponse)
async def queue_rows(request: Request, context: Desk) -> Response:
    """The queue's rows alone, for the page's script to swap in when something changed."""
    agent = signed_in(request)
    if agent is None:
        return Response(status_code=status.HTTP_401_UNAUTHORIZED)
    items = await asyncio.to_thread(views.my_queue, context.reads.sessions, agent)
    return templates.TemplateResponse(
        request,
        "_queue_rows.html",
        {"agent": agent, "items": items, "version": views.queue_version(items)},
    )


def _page(context: DeskContext, agent: Agent, case_id: str) -> views.CasePage:
    visible_case(context, agent, case_id)
    history = context.reads.history(case_id)
    if history is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {case_id}")
    queue, owner = history.get("queue"), history.get("assignee")
    directory = context.directory
    transfer_queues = [
        settings.name
        for settings in directory.queues()
        if settings.name != queue and agent.sees(settings.name)
    ]
    assignees = []
    if agent.may_reassign and queue:
        assignees = [other.name for other in directory.agents(queue) if other.name != owner]
    return views.case_page(history, agent, transfer_queues=transfer_queues, assignees=assignees)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_view(request: Request, case_id: str, context: Desk) -> Response:
    """A case: conversation, clocks, decisions, the customer's cases, reply and status forms."""
    agent = signed_in(request)
    if agent is None:
        return to_login()
    try:
        page = await asyncio.to_thread(_page, context, agent, case_id)
    except HTTPException as error:
        return _error_page(request, agent, error)
    notice = {key: request.query_params.get(key) for key in ("did", "verdict", "reason")}
    return templates.TemplateResponse(
        request,
        "case.html",
        {
            "agent": agent,
            "page": page,
            "buttons": _buttons(page, agent),
            "notice": notice if notice["did"] else None,
            "action_id": uuid.uuid4().hex,
            "now": views.now_rfc3339(),
        },
    )


@router.get("/cases/{case_id}/live", response_class=HTMLResponse)
async def case_live(request: Request, case_id: str, context: Desk) -> Response:
    """The parts of a case page that change (summary, conversation, decisions)."""
    agent = signed_in(request)
    if agent is None:
        return Response(status_code=status.HTTP_401_UNAUTHORIZED)
    try:
        page = await asyncio.to_thread(_page, context, agent, case_id)
    except HTTPException as error:
        return Response(status_code=error.status_code)
    return templates.TemplateResponse(
        request,
        "_case_live.html",
        {
            "agent": agent,
            "page": page,
            "buttons": _buttons(page, agent),
            "action_id": uuid.uuid4().hex,
        },
    )


def _buttons(page: views.CasePage, agent: Agent) -> list[tuple[str, str]]:
    """The status buttons that make sense for this case and agent, as (value, words)."""
    case = page.case
    if page.resolved:
        wanted = ["reopen"]
    else:
        wanted = []
        if case.get("assignee") != agent.name or case.get("assignment_pending"):
            wanted.append("claim")
        if case.get("assignee") and (page.mine or agent.may_reassign):
            wanted.append("release")
        wanted.extend(
            value
            for value in ("open", "pending", "waiting_on_customer")
            if case.get("status") != value
        )
        wanted.append("resolve")
    return [(value, STATUS_BUTTONS[value][2]) for value in wanted]


@router.post("/cases/{case_id}/act")
async def act(
    request: Request,
    case_id: str,
    context: Desk,
    action: Annotated[str, Form()],
    action_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A status button: publish its action and come back to the case with the verdict."""
    if action not in STATUS_BUTTONS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"unknown action {action!r}")
    kind, fields, _words = STATUS_BUTTONS[action]
    if kind in _LEADS_OVERRIDE:
        agent = signed_in(request)
        fields = {**fields, "override": bool(agent and agent.may_reassign)}
    return await _submit(request, context, case_id, kind, action, action_id, **fields)


_LEADS_OVERRIDE = frozenset(
    {AgentActionType.RELEASE, AgentActionType.STATUS, AgentActionType.RESOLVE}
)
"""Buttons a lead may press on another agent's case (a claim is never forced)."""


@router.post("/cases/{case_id}/transfer")
async def transfer(
    request: Request,
    case_id: str,
    context: Desk,
    queue: Annotated[str, Form(max_length=100)],
    action_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Move the case to another of my queues (it waits there unowned)."""
    agent = signed_in(request)
    if agent is None:
        return to_login()
    if context.directory.queue(queue) is None or not agent.sees(queue):
        return _back(case_id, "transfer", "rejected", f"you cannot move cases to queue {queue!r}")
    return await _submit(
        request,
        context,
        case_id,
        AgentActionType.TRANSFER,
        "transfer",
        action_id,
        queue=queue,
        override=agent.may_reassign,
    )


@router.post("/cases/{case_id}/assign")
async def assign(
    request: Request,
    case_id: str,
    context: Desk,
    to_agent: Annotated[str, Form(max_length=64)],
    action_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A lead gives the case to an agent of its queue, who accepts it by claiming."""
    agent = signed_in(request)
    if agent is None:
        return to_login()
    if not agent.may_reassign:
        return _back(case_id, "assign", "rejected", "assigning a case needs the lead role")
    row = await asyncio.to_thread(context.reads.case, case_id)
    target = context.directory.agent(to_agent)
    if row is None or target is None or not target.sees(row.queue):
        return _back(case_id, "assign", "rejected", f"{to_agent} cannot take this case")
    return await _submit(
        request,
        context,
        case_id,
        AgentActionType.ASSIGN,
        "assign",
        action_id,
        to_agent=to_agent,
        override=True,
    )


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
    kind = AgentActionType.NOTE if internal else AgentActionType.REPLY
    if not text.strip():
        return _back(case_id, kind.value, "rejected", "write something first")
    agent = signed_in(request)
    override = bool(agent and agent.may_reassign)
    return await _submit(
        request, context, case_id, kind, kind.value, action_id, text=text, override=override
    )


async def _submit(
    request: Request,
    context: DeskContext,
    case_id: str,
    kind: AgentActionType,
    did: str,
    action_id: str,
    **fields: Any,
) -> Response:
    agent = signed_in(request)
    if agent is None:
        return to_login()
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site form post refused")
    try:
        await asyncio.to_thread(visible_case, context, agent, case_id)
    except HTTPException as error:
        return _error_page(request, agent, error)
    action = AgentAction(
        # The form's nonce with what was pressed: the same form submitted twice (a double
        # click, a resent POST) is one action, applied once; another button is another action.
        action_id=f"console-{action_id or uuid.uuid4().hex}-{did}",
        case_id=case_id,
        agent_id=agent.name,
        type=kind,
        at=datetime.now(UTC),
        **fields,
    )
    try:
        outcome = await context.gateway.submit(action)
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


def _error_page(request: Request, agent: Agent, error: HTTPException) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {"agent": agent, "status_code": error.status_code, "detail": error.detail},
        status_code=error.status_code,
    )
