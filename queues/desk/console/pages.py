"""The console's pages under `/console`: log in and out, presence, my queue, and a case.

Pages are rendered on the server and work without JavaScript: every action is a form
that posts to the console (`forms`) and redirects back (post/redirect/get) with the
stream's verdict.
`console.js` adds the live parts: SLA countdowns, and refreshing the queue and the case
from the desk's event stream. The token lives in an HttpOnly, SameSite=Strict, Secure
cookie, which the API also accepts, so the page's scripts can follow `/v1/events`.

What an action does, and who may, is `queues.desk.actions` and `queues.desk.authz` (which
the API calls too): the console only reads forms and shows outcomes. Cross-site posts are
refused before they get here (`queues.desk.hardening`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from queues.desk import actions, authz
from queues.desk.auth import TOKEN_COOKIE, authenticate
from queues.desk.authz import RefusedError
from queues.desk.console import views
from queues.desk.console.icons import CHANNEL_LABELS, channel_icon
from queues.desk.context import DeskContext, desk
from queues.desk.customers import customer_history
from queues.desk.directory import Agent, Presence
from queues.desk.gateway import PublishError
from queues.desk.hardening import RateLimitedError, WebSecurity
from queues.history import BadCursorError
from schemas import AgentActionType, CaseStatus

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
    return authenticate(request, token)


def to_login() -> RedirectResponse:
    """Send the browser to the login page."""
    return RedirectResponse(f"{PREFIX}/login", status_code=status.HTTP_303_SEE_OTHER)


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
    security: WebSecurity = request.app.state.web_security
    try:
        agent = authenticate(request, token.strip()) if token.strip() else None
        if agent is not None:
            request.app.state.sign_in_limits.log_in(agent.name)
    except RateLimitedError as error:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": f"Too many attempts. Try again in {error.retry_after} seconds."},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(error.retry_after)},
        )
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
        secure=not security.plain_http,
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
    presence: Annotated[str, Form(max_length=32)] = "",
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Set my presence: online takes new cases, away keeps mine, offline gives mine back."""
    agent = signed_in(request)  # first: a caller without credentials learns nothing else
    if agent is None:
        return to_login()
    try:
        chosen = Presence(presence)
    except ValueError as error:
        raise HTTPException(422, f"no presence {presence!r}") from error
    try:
        await actions.set_presence(desk(request), agent, agent.name, chosen)
    except RefusedError as error:
        return refused_page(request, agent, error)
    except PublishError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from error
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
    actions.visible_case(context, agent, case_id)
    history = context.reads.history(case_id)
    if history is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {case_id}")
    queue, owner = history.get("queue"), history.get("assignee")
    directory = context.directory
    transfer_queues = [
        settings.name
        for settings in directory.queues()
        if settings.name != queue and _allowed(authz.may_move_to, agent, settings.name, True)
    ]
    assignees = []
    if _allowed(authz.require_lead, agent, "assigning") and queue:
        assignees = [
            other.name
            for other in directory.agents(queue)
            if other.name != owner and _allowed(authz.may_take, other.name, other, queue)
        ]
    escalate_queues = None
    if _allowed(authz.may_escalate, agent, _Row(queue), case_id, None, True):
        escalate_queues = [settings.name for settings in directory.queues()]
    return views.case_page(
        history,
        agent,
        transfer_queues=transfer_queues,
        assignees=assignees,
        escalate_queues=escalate_queues,
    )


@dataclass(frozen=True)
class _Row:
    """The facts of a case the escalation rule reads, from its history."""

    queue: str | None
    assignee: str | None = None


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_view(request: Request, case_id: str, context: Desk) -> Response:
    """A case: conversation, clocks, decisions, the customer's cases, reply and status forms."""
    agent = signed_in(request)
    if agent is None:
        return to_login()
    try:
        page = await asyncio.to_thread(_page, context, agent, case_id)
    except RefusedError as error:
        return refused_page(request, agent, error)
    except HTTPException as error:
        return error_page(request, agent, error.status_code, str(error.detail))
    notice = {key: request.query_params.get(key) for key in ("did", "verdict", "reason")}
    try:
        history = await asyncio.to_thread(
            customer_history, context, agent, str(page.case["customer_id"]), cursor=None, limit=50
        )
    except RefusedError:  # cannot be: the agent sees this case of the customer
        history = None
    return templates.TemplateResponse(
        request,
        "case.html",
        {
            "agent": agent,
            "page": page,
            "history": history.to_json() if history else None,
            "current_case": case_id,
            "buttons": _buttons(page, agent),
            "notice": notice if notice["did"] else None,
            "action_id": uuid.uuid4().hex,
            "now": views.now_rfc3339(),
        },
    )


@router.get("/customers/{customer_id:path}/history", response_class=HTMLResponse)
async def history_view(
    request: Request, customer_id: str, context: Desk, cursor: str | None = None
) -> Response:
    """A page of the customer's history (the case page shows the first one)."""
    agent = signed_in(request)
    if agent is None:
        return to_login()
    try:
        history = await asyncio.to_thread(
            customer_history, context, agent, customer_id, cursor=cursor, limit=50
        )
    except RefusedError as error:
        return refused_page(request, agent, error)
    except BadCursorError as error:
        return error_page(request, agent, 422, str(error))
    return templates.TemplateResponse(
        request,
        "customer_history.html",
        {"agent": agent, "history": history.to_json(), "current_case": None},
    )


@router.get("/cases/{case_id}/live", response_class=HTMLResponse)
async def case_live(request: Request, case_id: str, context: Desk) -> Response:
    """The parts of a case page that change (summary, conversation, decisions)."""
    agent = signed_in(request)
    if agent is None:
        return Response(status_code=status.HTTP_401_UNAUTHORIZED)
    try:
        page = await asyncio.to_thread(_page, context, agent, case_id)
    except (RefusedError, HTTPException) as error:
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


def error_page(
    request: Request, agent: Agent, status_code: int, detail: str, refusal: str | None = None
) -> Response:
    """A page saying why the agent cannot have what they asked for."""
    return templates.TemplateResponse(
        request,
        "error.html",
        {"agent": agent, "status_code": status_code, "detail": detail, "refusal": refusal},
        status_code=status_code,
    )


def refused_page(request: Request, agent: Agent, error: RefusedError) -> Response:
    """A refusal with the status and the words the API would answer with."""
    return error_page(request, agent, error.status_code, error.detail, error.refusal.value)


def _allowed(rule: Callable[..., None], *args: Any) -> bool:
    """Whether an `authz` rule lets it through (to offer only what the desk would accept)."""
    try:
        rule(*args)
    except RefusedError:
        return False
    return True
