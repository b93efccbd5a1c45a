"""The pager providers' own acknowledgement webhooks: PagerDuty v3 and Opsgenie, signature-checked.

- PagerDuty (Generic Webhooks v3): `X-PagerDuty-Signature` holds one or more `v1=<hex>`
  HMAC-SHA256 signatures of the raw body (several during a secret rotation); one must match.
  An `incident.acknowledged` event by a user (`agent.type: user_reference`) whose incident's
  `incident_key` is one of our dedup keys acknowledges that case's pages in their name; one
  by a service (our own Events API acknowledgement echoed back) is ignored.
- Opsgenie (Webhook integration): the integration sends our shared secret in the header
  `X-Escalator-Webhook-Secret` (a custom header of the integration), compared in constant time.
  An `Acknowledge` action on an alert whose `alias` is one of our aliases acknowledges it.

A request without a valid signature is 401, before its body is read as JSON. Anything else a
provider sends (other event types, other services' incidents) is answered 202 and ignored, so
the provider does not retry it. The acknowledgement itself goes through `actions`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse

from queues.desk import actions
from queues.desk.authz import ProviderAcknowledgement
from queues.desk.context import DeskContext, desk

MAX_WEBHOOK_BYTES = 256 * 1024
"""Largest webhook body read (PagerDuty's and Opsgenie's are a few KB)."""

OPSGENIE_SECRET_HEADER = "X-Escalator-Webhook-Secret"


@dataclass(frozen=True)
class PagerWebhookSecrets:
    """The secrets the providers sign their webhooks with; None leaves a provider's door shut."""

    pagerduty: tuple[str, ...] = ()
    """PagerDuty v3 subscription secrets (more than one during a rotation)."""
    opsgenie: str | None = None


router = APIRouter(prefix="/v1/pagers", tags=["pagers"])
Desk = Annotated[DeskContext, Depends(desk)]


def pagerduty_signed(body: bytes, header: str | None, secrets: tuple[str, ...]) -> bool:
    """Whether one `v1=` signature of the header is the HMAC-SHA256 of `body` with a secret."""
    if not header or not secrets:
        return False
    offered = [part.strip() for part in header.split(",") if part.strip().startswith("v1=")]
    for secret in secrets:
        expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, signature) for signature in offered):
            return True
    return False


def pagerduty_acknowledgement(document: Any) -> ProviderAcknowledgement | None:
    """The acknowledgement a v3 webhook event reports, or None (another event, another key)."""
    event = document.get("event") if isinstance(document, dict) else None
    if not isinstance(event, dict) or event.get("event_type") != "incident.acknowledged":
        return None
    data = _mapping(event.get("data"))
    key = data.get("incident_key")
    event_id = event.get("id")
    if not isinstance(key, str) or "/" not in key or not isinstance(event_id, str):
        return None
    agent = _mapping(event.get("agent"))
    if agent.get("type", "user_reference") != "user_reference":
        return None  # our own Events API acknowledgement coming back, not a person's
    user = str(agent.get("summary") or agent.get("id") or "someone")[:48]
    return ProviderAcknowledgement(
        provider="pagerduty",
        key=key,
        user=user,
        action_id=f"pagerduty:{event_id}"[:100],
        note=f"acknowledged in PagerDuty by {user} (incident {data.get('id')})",
    )


def opsgenie_acknowledgement(document: Any) -> ProviderAcknowledgement | None:
    """The acknowledgement an Opsgenie webhook reports, or None (another action, another alias)."""
    if not isinstance(document, dict) or document.get("action") != "Acknowledge":
        return None
    alert = _mapping(document.get("alert"))
    key, alert_id = alert.get("alias"), alert.get("alertId")
    if not isinstance(key, str) or "/" not in key or not isinstance(alert_id, str):
        return None
    user = str(alert.get("username") or alert.get("userId") or "someone")[:48]
    return ProviderAcknowledgement(
        provider="opsgenie",
        key=key,
        user=user,
        action_id=f"opsgenie:{alert_id}:acknowledge"[:100],
        note=f"acknowledged in Opsgenie by {user} (alert {alert_id})",
    )


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_WEBHOOK_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "webhook body too large")
    return body


def _secrets(request: Request) -> PagerWebhookSecrets:
    secrets: PagerWebhookSecrets = request.app.state.pager_webhooks
    return secrets


def _unsigned() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid webhook signature",
        headers={"WWW-Authenticate": "Signature"},
    )


async def _acknowledge(context: DeskContext, body: bytes, read: Any) -> JSONResponse:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than a parser goes
        return JSONResponse({"outcome": "ignored", "detail": "not JSON"}, status_code=400)
    acknowledgement = read(document)
    if acknowledgement is None:
        return JSONResponse({"outcome": "ignored"}, status_code=status.HTTP_202_ACCEPTED)
    outcome = await actions.acknowledge_page(context, acknowledgement)
    if outcome is None:
        return JSONResponse(
            {"outcome": "ignored", "detail": "not an Escalator page"},
            status_code=status.HTTP_202_ACCEPTED,
        )
    return JSONResponse(
        {"outcome": "published", "action_id": outcome.action.action_id},
        status_code=status.HTTP_202_ACCEPTED,
    )


@router.post("/pagerduty", summary="PagerDuty v3 webhook (X-PagerDuty-Signature)")
async def pagerduty(request: Request, context: Desk) -> JSONResponse:
    """An `incident.acknowledged` of one of our pages acknowledges the case's pages."""
    body = await _body(request)
    header = request.headers.get("X-PagerDuty-Signature")
    if not pagerduty_signed(body, header, _secrets(request).pagerduty):
        raise _unsigned()
    return await _acknowledge(context, body, pagerduty_acknowledgement)


@router.post("/opsgenie", summary="Opsgenie webhook (shared secret header)")
async def opsgenie(request: Request, context: Desk) -> JSONResponse:
    """An `Acknowledge` of one of our alerts acknowledges the case's pages."""
    body = await _body(request)
    secret = _secrets(request).opsgenie
    offered = request.headers.get(OPSGENIE_SECRET_HEADER, "")
    if not secret or not hmac.compare_digest(offered.encode(), secret.encode()):
        raise _unsigned()
    return await _acknowledge(context, body, opsgenie_acknowledgement)
