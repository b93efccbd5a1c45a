"""Delivering an agent reply where the customer wrote: the sender of the reply's channel.

Each channel plugin (`connectors.channels.registry.PLUGINS`) brings the sender of its channels;
`ChannelSenders` only looks the channel up. A channel no plugin answers for (`chat`, `webform`,
a channel of your own), or whose plugin's sender is not configured (X and Meta without their
tokens), goes to the generic reply webhook when that is configured, else fails visibly.

Also here, the one way every HTTP sender calls its provider (`post`) and reads its answer
(`check_response`): a failure raises `DeliveryError`, permanent for answers that will not
change on retry (4xx), transient otherwise (408, 429, 5xx, connection trouble), with the
wait the provider asked for (`Retry-After`, X's `x-rate-limit-reset`) in `retry_after`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from connectors.outbound._model import DeliveryError, Reply


class ReplySender(Protocol):
    """Anything that delivers one reply or raises `DeliveryError`."""

    def send(self, reply: Reply) -> None:
        """Deliver one reply or raise DeliveryError."""


class ChannelSenders:
    """Delivers a reply with the sender of its channel (or the reply webhook's)."""

    def __init__(
        self, by_channel: Mapping[str, ReplySender], fallback: ReplySender | None = None
    ) -> None:
        self.by_channel = dict(by_channel)
        self.fallback = fallback

    def send(self, reply: Reply) -> None:
        """Deliver one reply or raise DeliveryError."""
        if not reply.text.strip():
            raise DeliveryError("empty", "the reply has no text", permanent=True)
        sender = self.by_channel.get(reply.channel, self.fallback)
        if sender is None:
            raise DeliveryError(
                "not_configured",
                f"no sender for channel {reply.channel!r}: set ESCALATOR_REPLY_WEBHOOK_URL "
                "and ESCALATOR_REPLY_WEBHOOK_SECRET",
                permanent=True,
            )
        sender.send(reply)


def check_response(response: httpx.Response) -> httpx.Response:
    """The response if 2xx; else a DeliveryError (4xx permanent, except 408 and 429)."""
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = f"HTTP {status}: {response.text[:300]}"
    if status in (408, 429):
        raise DeliveryError(f"http_{status}", detail, retry_after=retry_after(response))
    if status >= 500:
        raise DeliveryError("http_5xx", detail, retry_after=retry_after(response))
    raise DeliveryError("http_4xx", detail, permanent=True)


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait: `Retry-After` (seconds or a date), else X's
    `x-rate-limit-reset` (unix seconds); None when it said nothing usable."""
    now = time.time() if now is None else now
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            return None
    reset = response.headers.get("x-rate-limit-reset", "").strip()
    if reset.isdigit():
        return max(0.0, int(reset) - now)
    return None


def post(
    client: httpx.Client,
    url: str,
    check: Callable[[httpx.Response], httpx.Response] = check_response,
    **kwargs: Any,
) -> httpx.Response:  # one place that turns transport errors into transient failures
    """POST and `check` the answer; connection problems and timeouts are transient failures.

    A failure before the request left (no connection) is certain; one after it may have
    reached the provider (read timeout, dropped connection) is `in_doubt`. A provider with
    its own error format passes its own `check` (which ends in `check_response`).
    """
    try:
        return check(client.post(url, **kwargs))
    except httpx.TransportError as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise DeliveryError("connection", detail, in_doubt=not isinstance(exc, _NOT_SENT)) from exc


_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)
"""Transport errors raised before any byte of the request reached the provider."""


def json_answer(response: httpx.Response, provider: str) -> Mapping[str, Any]:
    """The provider's JSON object answer; a transient DeliveryError when it is not JSON."""
    try:
        document = response.json()
    except ValueError as exc:
        raise DeliveryError("api_error", f"{provider}: not JSON: {response.text[:200]}") from exc
    return document if isinstance(document, dict) else {}
