"""The desk's web defences: the session cookie's flags, same-origin writes, security headers,
sign-in rate limits, and no tokens in the access log.

- The console's cookie is always `Secure` (and HttpOnly, SameSite=Strict) unless
  `WebSecurity.plain_http` says this is plain-HTTP development.
- A write (any method but GET, HEAD, OPTIONS) that the cookie authenticates, and every
  console form post, must come from the desk's own origin: its `Origin` (or, without one,
  its `Referer`) names the host the request was sent to. Requests with a bearer token need
  no such check: no other site can make a browser send one.
- Every answer carries a strict Content-Security-Policy (scripts and styles only from the
  desk itself, nothing inline, no framing), `X-Content-Type-Options: nosniff`,
  `Referrer-Policy: same-origin` and `X-Frame-Options: DENY`.
- Failed sign-ins (console or API) are limited per source address, and console logins per
  agent; over a limit the answer is 429 with `Retry-After`.
- No request body over `MAX_BODY_BYTES` is read, whoever sends it: a declared length over it
  is refused with 413 before anything else, and a chunked body is cut off at the limit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queues.desk.ratelimit import SlidingWindow

TOKEN_COOKIE = "escalator_token"
"""The cookie the console keeps the agent's token in."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
"""Everything from the desk itself, nothing inline, never in a frame."""

DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "img-src 'self' data: https://fastapi.tiangolo.com",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
"""FastAPI's interactive docs (`/docs`, `/redoc`) load from a CDN and set themselves up inline;
they carry no agent data, and no other page gets this policy."""

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})

HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


@dataclass(frozen=True)
class WebSecurity:
    """How strict the desk is with browsers and sign-ins."""

    plain_http: bool = False
    """Development over plain HTTP only: the session cookie is not marked Secure."""
    login_failures_per_address: int = 10
    """Failed sign-ins (console or API) one source address may make per window."""
    logins_per_agent: int = 10
    """Console logins one agent may make per window, from wherever."""
    window_seconds: float = 300.0


class RateLimitedError(Exception):
    """Too many attempts; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.detail = detail


class SignInLimits:
    """The sign-in limits of one desk process."""

    def __init__(self, security: WebSecurity) -> None:
        self._failures = SlidingWindow(security.login_failures_per_address, security.window_seconds)
        self._logins = SlidingWindow(security.logins_per_agent, security.window_seconds)

    def check_address(self, address: str) -> None:
        """RateLimitedError while `address` has used up its failures."""
        wait = self._failures.retry_after(address)
        if wait is not None:
            raise RateLimitedError(wait, f"too many failed sign-ins from {address}")

    def failed(self, address: str) -> None:
        """Count a failed sign-in from `address`."""
        self._failures.hit(address)

    def log_in(self, agent: str) -> None:
        """Count a console login of `agent`; RateLimitedError if it had too many already."""
        wait = self._logins.retry_after(agent)
        if wait is not None:
            raise RateLimitedError(wait, f"too many logins of {agent}; try again later")
        self._logins.hit(agent)


def same_origin(headers: Headers) -> bool:
    """Whether the request's `Origin` (else `Referer`) names the host it was sent to."""
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc == host
    referer = headers.get("referer")
    return referer is not None and urlsplit(referer).netloc == host


def needs_same_origin(scope: Scope, headers: Headers) -> bool:
    """Writes the cookie authenticates, and every console form post (login included)."""
    if scope["method"] in SAFE_METHODS:
        return False
    if str(scope["path"]).startswith("/console/"):
        return True
    bearer = headers.get("authorization", "").lower().startswith("bearer ")
    return not bearer and TOKEN_COOKIE in cookie_parser(headers.get("cookie", ""))


MAX_BODY_BYTES = 1_048_576
"""The largest request body the desk reads: a 100,000-character reply fits, escaped."""

BODY_TOO_LARGE = f"request body over {MAX_BODY_BYTES} bytes"


class DeskGuard:
    """ASGI middleware: bounds bodies, refuses cross-site writes, adds the security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard one HTTP request; other scopes pass through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = (
            DOCS_CONTENT_SECURITY_POLICY if scope["path"] in DOCS_PATHS else CONTENT_SECURITY_POLICY
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", policy.encode()))
                headers.extend(HEADERS)
                message["headers"] = headers
            await send(message)

        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await PlainTextResponse(BODY_TOO_LARGE, status_code=413)(
                scope, receive, send_with_headers
            )
            return
        if needs_same_origin(scope, headers) and not same_origin(headers):
            refused = PlainTextResponse(
                "cross-site request refused: a write with the console's cookie must come "
                "from the desk's own pages (Origin or Referer)",
                status_code=403,
            )
            await refused(scope, receive, send_with_headers)
            return
        await self.app(scope, _bounded(receive), send_with_headers)


def _bounded(receive: Receive) -> Receive:
    """`receive`, raising a 413 once the body passes `MAX_BODY_BYTES` (a chunked upload)."""
    received = 0

    async def bounded_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise HTTPException(413, BODY_TOO_LARGE)
        return message

    return bounded_receive


_QUERY_SECRET = re.compile(r"((?:access_)?token=)[^&\s]*", re.IGNORECASE)


class RedactTokensInAccessLog(logging.Filter):
    """Masks `token=` and `access_token=` query values in uvicorn's access log lines: the
    desk takes no token in a URL, but an old client may still send one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's arguments; never drops a line."""
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY_SECRET.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Install the redaction on uvicorn's access logger (once per process)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactTokensInAccessLog) for existing in logger.filters):
        logger.addFilter(RedactTokensInAccessLog())
