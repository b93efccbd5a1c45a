"""Who is calling: per-agent bearer tokens, and what their role lets them see.

A token comes in the `Authorization: Bearer` header, or the `escalator_token` cookie the
console sets (HttpOnly, SameSite=Strict), or, for the event stream only (browsers'
EventSource cannot send headers), an `access_token` query parameter. A missing or
unknown token is 401; a queue the agent is not a member of is 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from queues.desk.directory import Agent, Directory

TOKEN_COOKIE = "escalator_token"
"""The cookie the console keeps the token in."""

_bearer = HTTPBearer(auto_error=False, description="An agent token from `escalator agents add`.")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def token_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The token the request carries, wherever it carries it."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    cookie = request.cookies.get(TOKEN_COOKIE)
    if cookie:
        return cookie
    if request.url.path.endswith("/events"):
        return request.query_params.get("access_token")
    return None


def current_agent(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Agent:
    """The authenticated agent (401 without a valid token)."""
    token = token_of(request, credentials)
    if not token:
        raise _unauthorized("missing credentials: send `Authorization: Bearer <token>`")
    directory: Directory = request.app.state.directory
    agent = directory.authenticate(token)
    if agent is None:
        raise _unauthorized("invalid token")
    return agent


CurrentAgent = Annotated[Agent, Depends(current_agent)]
"""The calling agent, as a FastAPI dependency."""


def require_queue(agent: Agent, queue: str | None) -> None:
    """403 unless the agent may see `queue`."""
    if not agent.sees(queue):
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"{agent.name} is not a member of queue {queue!r}",
        )


def require_lead(agent: Agent, what: str) -> None:
    """403 unless the agent is a lead or an admin."""
    if not agent.may_reassign:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"{what} needs the lead or admin role; {agent.name} is an {agent.role.value}",
        )
