"""`GET/POST /v1/escalate/{token}`: the customer's "still not solved?" page, served by the ingress.

The token is the acknowledgement's signed, expiring link (`schemas.links`). The page is
plain HTML with a form (no JavaScript, labelled fields, one heading per page). Submitting it
publishes a customer message to `messages.inbound` that quotes the case reference (so it
joins its case), carries the case's customer id and is flagged
`metadata.escalation_request` (only this page may set it: `metadata.escalation_request` is
a trust field of the ingress keys); stage C records `case.customer_escalated` and counts
`case.customer_escalations` for the rules.

A forged or altered token answers 404, an expired one 410, a used one 409. Each link
escalates once: this process remembers used links (`ReplayCache`), and a replay it cannot
know (another replica, a restart) is the same message, `external_id` = `escalate:<nonce>`,
which the pipeline drops as a duplicate.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from connectors.channels._http import MessageSink
from connectors.channels._metrics import CHANNEL_REQUESTS
from connectors.channels._replay import DeliveryMemory, ReplayCache
from connectors.http_ingress import read_limited
from connectors.publisher import PublishError
from schemas import CustomerAttributes, InboundMessage
from schemas.links import ESCALATE_PATH, EscalationLinks, LinkClaims, LinkRefused

__all__ = ["MAX_TEXT_CHARS", "escalate_router"]

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4_000
"""Longest text the customer may add (the form says so too)."""

_MAX_FORM_BYTES = 32_768
_CHANNEL = "webform"
_REPLAY_CHANNEL = "escalate-link"

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never pass it on
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}

_REFUSALS = {
    "malformed": (404, "This link is not valid", "Please use the link from our message."),
    "forged": (404, "This link is not valid", "Please use the link from our message."),
    "expired": (
        410,
        "This link has expired",
        "Please reply to our message instead, and we will pick your case up.",
    ),
    "used": (
        409,
        "This link was already used",
        "Your case was escalated. You can reply to our message to tell us more.",
    ),
}


def escalate_router(
    links: EscalationLinks, sink: MessageSink, used: DeliveryMemory | None = None
) -> APIRouter:
    """The page's routes, checking tokens with `links` and publishing through `sink`."""
    used_links: DeliveryMemory = used or ReplayCache(max_age_seconds=links.lifetime.total_seconds())
    router = APIRouter()
    path = ESCALATE_PATH + "{token}"

    def claims_of(token: str) -> LinkClaims | Response:
        try:
            return links.check(token, datetime.now(UTC))
        except LinkRefused as refused:
            CHANNEL_REQUESTS.labels(_CHANNEL, refused.reason).inc()
            return _refusal(refused.reason)

    @router.get(path, response_class=HTMLResponse, include_in_schema=False)
    async def escalate_form(token: str) -> Response:
        """The form: "Still not solved?", an optional text, one button."""
        claims = claims_of(token)
        if isinstance(claims, Response):
            return claims
        if used_links.seen(_REPLAY_CHANNEL, claims.nonce):
            return _refusal("used")
        return _page(200, "Still not solved?", _form(claims.case_id))

    @router.post(path, response_class=HTMLResponse, include_in_schema=False)
    async def escalate_submit(token: str, request: Request) -> Response:
        """Escalate the case once: publish the customer's request, then thank them."""
        claims = claims_of(token)
        if isinstance(claims, Response):
            return claims
        body = await read_limited(request, _MAX_FORM_BYTES)
        if body is None:
            return _page(413, "Your text is too long", _back(token, "Please shorten it."))
        text = _form_text(body, request.headers.get("content-type", ""))
        if len(text) > MAX_TEXT_CHARS:
            return _page(413, "Your text is too long", _back(token, "Please shorten it."))
        if not used_links.claim(_REPLAY_CHANNEL, claims.nonce):
            CHANNEL_REQUESTS.labels(_CHANNEL, "replayed").inc()
            return _refusal("used")
        try:
            await sink.publish([_request_message(claims, text)])
        except PublishError as exc:
            used_links.release(_REPLAY_CHANNEL, claims.nonce)  # nothing went out: may retry
            log.warning("escalation request for %s not published: %s", claims.case_id, exc)
            return _page(
                503,
                "Please try again in a minute",
                "<p>We could not record your request just now. Nothing was lost: please "
                "send the form again in a minute.</p>",
                {"Retry-After": "60"},
            )
        CHANNEL_REQUESTS.labels(_CHANNEL, "accepted").inc()
        reference = html.escape(claims.case_id)
        return _page(
            200,
            "Your case is escalated",
            f"<p>Thank you. Case <strong>{reference}</strong> is now escalated, and a "
            "senior member of our team will look at it.</p>",
        )

    return router


def _request_message(claims: LinkClaims, text: str) -> InboundMessage:
    return InboundMessage(
        channel=_CHANNEL,
        external_id=f"escalate:{claims.nonce}",
        sender=f"escalation-link:{claims.case_id}",
        text=text or "Still not solved: the customer asked to escalate the case.",
        sent_at=datetime.now(UTC),
        subject=f"[#{claims.case_id}] Still not solved",
        customer=CustomerAttributes(id=claims.customer_id),
        metadata={"escalation_request": True, "escalation_link": claims.nonce},
    )


def _form_text(body: bytes, content_type: str) -> str:
    """The `text` field of an urlencoded form (what a browser sends without JavaScript)."""
    if "application/x-www-form-urlencoded" not in content_type.lower():
        return ""
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return (fields.get("text") or [""])[0].replace("\r\n", "\n").strip()


def _refusal(reason: str) -> Response:
    status, title, text = _REFUSALS[reason]
    return _page(status, title, f"<p>{html.escape(text)}</p>")


def _form(case_id: str) -> str:
    reference = html.escape(case_id)
    return (
        f"<p>Your case <strong>{reference}</strong> is not solved yet? Tell us, and we "
        "will escalate it to a senior member of our team.</p>"
        '<form method="post">'
        f'<label for="text">What is still wrong? (optional, up to {MAX_TEXT_CHARS} '
        "characters)</label>"
        f'<textarea id="text" name="text" rows="6" maxlength="{MAX_TEXT_CHARS}"></textarea>'
        '<button type="submit">Escalate my case</button>'
        "</form>"
    )


def _back(token: str, text: str) -> str:
    return f'<p>{html.escape(text)} <a href="{ESCALATE_PATH}{html.escape(token)}">Back</a></p>'


def _page(status: int, title: str, body: str, headers: dict[str, str] | None = None) -> Response:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:1.1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;"
        "padding:0 1rem}label{display:block;margin:1rem 0 .3rem}textarea{width:100%;"
        "font:inherit}button{margin-top:1rem;font:inherit;padding:.5rem 1rem}"
        ":focus{outline:3px solid #1a5fb4;outline-offset:2px}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={**_HEADERS, **(headers or {})})
