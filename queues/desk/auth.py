"""Who is calling: per-agent bearer tokens, checked with sign-in limits.

A token comes in the `Authorization: Bearer` header, or in the `escalator_token` cookie the
console sets (HttpOnly, SameSite=Strict, Secure). Never in a URL: URLs end up in access
logs, browser histories and `Referer` headers. A missing or unknown token is 401; too many
unknown ones from one address are 429 (`queues.desk.hardening`). What an agent may do once
known is `queues.desk.authz`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from queues.desk.directory import Agent, Directory
from queues.desk.hardening import TOKEN_COOKIE, SignInLimits

__all__ = ["TOKEN_COOKIE", "CurrentAgent", "authenticate", "client_address", "current_agent"]

_bearer = HTTPBearer(auto_error=False, description="An agent token from `escalator agents add`.")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def client_address(request: Request) -> str:
    """The caller's address as uvicorn reports it (the proxy's own, unless uvicorn trusts the
    proxy's `X-Forwarded-For`: see `FORWARDED_ALLOW_IPS` in docs/operations.md)."""
    return request.client.host if request.client else "unknown"


def authenticate(request: Request, token: str) -> Agent | None:
    """The agent holding `token`, or None; counts failures against the caller's address and
    raises `RateLimitedError` while the address has used up its failures."""
    limits: SignInLimits = request.app.state.sign_in_limits
    address = client_address(request)
    limits.check_address(address)
    directory: Directory = request.app.state.directory
    agent = directory.authenticate(token)
    if agent is None:
        limits.failed(address)
    return agent


def current_agent(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Agent:
    """The authenticated agent (401 without a valid token)."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token: str | None = credentials.credentials
    else:
        token = request.cookies.get(TOKEN_COOKIE)
    if not token:
        raise _unauthorized("missing credentials: send `Authorization: Bearer <token>`")
    agent = authenticate(request, token)
    if agent is None:
        raise _unauthorized("invalid token")
    return agent


CurrentAgent = Annotated[Agent, Depends(current_agent)]
"""The calling agent, as a FastAPI dependency."""
