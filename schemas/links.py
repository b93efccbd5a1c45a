"""The customer's escalation link (`links.escalate`): signed by the worker, checked by the ingress.

A link names one case, its customer, a nonce (the acknowledgement's event id) and when it
expires, signed with HMAC-SHA256 under `ESCALATOR_ESCALATE_LINK_SECRET`. The token is a
pure function of those and the key, so a replayed worker writes the same link. Forged,
altered and expired tokens are refused here; a used one is refused by the ingress
(`connectors.escalate_page`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["ESCALATE_PATH", "EscalationLinks", "LinkClaims", "LinkRefused"]

ESCALATE_PATH = "/v1/escalate/"
"""Where the ingress serves the page; a link is `<public URL>/v1/escalate/<token>`."""

_CONTEXT = b"escalator.escalate-link.v1."
MAX_TOKEN_CHARS = 2_000
"""Longest token looked at (case and customer ids are bounded far below it)."""


class LinkRefused(ValueError):  # noqa: N818 - a refusal with its reason
    """A link that is not honoured; `reason` is `malformed`, `forged` or `expired`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    """What a valid link stands for."""

    case_id: str
    customer_id: str
    nonce: str
    expires_at: datetime


@dataclass(frozen=True)
class EscalationLinks:
    """Makes and checks escalation links with one secret and the ingress's public URL."""

    secret: str
    base_url: str
    lifetime: timedelta = timedelta(days=30)

    def token(self, case_id: str, customer_id: str, nonce: str, issued_at: datetime) -> str:
        """The signed token for a case, valid `lifetime` after `issued_at` (event time)."""
        expires = int((issued_at + self.lifetime).timestamp())
        claims = json.dumps(
            {"c": case_id, "u": customer_id, "n": nonce, "e": expires},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        body = _b64(claims)
        return f"{body}.{_b64(self._mac(body))}"

    def url(self, case_id: str, customer_id: str, nonce: str, issued_at: datetime) -> str:
        """The whole link, as a template's `links.escalate`."""
        token = self.token(case_id, customer_id, nonce, issued_at)
        return f"{self.base_url.rstrip('/')}{ESCALATE_PATH}{token}"

    def check(self, token: str, now: datetime) -> LinkClaims:
        """The claims of a valid, unexpired token; raises `LinkRefused` otherwise."""
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise LinkRefused("malformed")
        body, signature = token.split(".")
        try:
            given = _unb64(signature)
        except ValueError:
            raise LinkRefused("malformed") from None
        if not hmac.compare_digest(given, self._mac(body)):
            raise LinkRefused("forged")
        try:
            claims = json.loads(_unb64(body))
            expires_at = datetime.fromtimestamp(int(claims["e"]), UTC)
            found = LinkClaims(str(claims["c"]), str(claims["u"]), str(claims["n"]), expires_at)
        except (ValueError, KeyError, TypeError, OverflowError, OSError):
            raise LinkRefused("malformed") from None
        if now >= found.expires_at:
            raise LinkRefused("expired")
        return found

    def _mac(self, body: str) -> bytes:
        return hmac.new(self.secret.encode(), _CONTEXT + body.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc
