"""The replay window of the webhooks: a bounded memory of the deliveries already taken.

A provider's signature proves who wrote a request, not that it is new: whoever captures a
signed delivery (a log, a proxy, a debugging tool) can post it again. Where the provider signs
a timestamp (Slack, Mailgun, the generic webhook) the timestamp check bounds that to minutes;
where it signs none (Twilio, Meta, X, Discourse, SendGrid's Basic auth) only memory can. Each
channel names a delivery by what its signature covers (the signature itself, or a digest of
the body when there is no signature), and `ReplayCache` remembers those names.

The memory is bounded both ways: at most `max_entries` names (the oldest go first) and none
older than `max_age_seconds`. It lives in the process (`SharedReplayCache` shares one
between the worker processes of an ingress, see `_replay_shared`): with several ingress
replicas, a replay routed to another replica, or one older than the window or pushed out by
newer deliveries, is not recognised here and reaches Kafka, where the pipeline's idempotency
on `channel` + `external_id` drops the repeated message. The cache makes replays cheap to
refuse and visible
(`escalator_channel_requests_total{outcome="replayed"}`); it is not the only line.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from prometheus_client import Counter

DEFAULT_MAX_ENTRIES = 100_000
"""Deliveries remembered per process (about 180 bytes each: 100,000 take some 18 MB)."""

DEFAULT_MAX_AGE_SECONDS = 86_400.0
"""How long a delivery is remembered: a day covers the retries of Twilio, X, Discourse and
SendGrid (minutes to hours); Meta's, up to 36 hours, are dropped later by idempotency."""

EVICTIONS = Counter(
    "escalator_webhook_replay_cache_evictions",
    "Remembered webhook deliveries forgotten early because the replay cache was full "
    "(a steady rate means ESCALATOR_WEBHOOK_REPLAY_CACHE_SIZE is too small for the traffic).",
)


class DeliveryMemory(Protocol):
    """What a webhook sink needs from a replay window (`ReplayCache`, `SharedReplayCache`)."""

    def claim(self, channel: str, delivery_id: str) -> bool:
        """True for a delivery not seen within the window (now remembered); False for a replay."""
        ...

    def seen(self, channel: str, delivery_id: str) -> bool:
        """Whether a delivery was claimed within the window (remembers nothing new)."""
        ...

    def release(self, channel: str, delivery_id: str) -> None:
        """Forget a claimed delivery that was not taken, so a retry is new."""


class ReplayCache:
    """Names of recent deliveries; `claim` says whether a delivery is new and remembers it."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_age_seconds <= 0:
            raise ValueError("the replay cache needs room for one entry and a positive age")
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._clock = clock
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def claim(self, channel: str, delivery_id: str) -> bool:
        """True for a delivery not seen within the window (now remembered); False for a replay."""
        now = self._clock()
        self._expire(now)
        key = delivery_key(channel, delivery_id)
        if key in self._seen:
            return False
        self._seen[key] = now
        while len(self._seen) > self._max_entries:
            self._seen.popitem(last=False)
            EVICTIONS.inc()
        return True

    def seen(self, channel: str, delivery_id: str) -> bool:
        """Whether a delivery was claimed within the window (remembers nothing new)."""
        self._expire(self._clock())
        return delivery_key(channel, delivery_id) in self._seen

    def release(self, channel: str, delivery_id: str) -> None:
        """Forget a claimed delivery that was not taken (Kafka refused it), so a retry is new."""
        self._seen.pop(delivery_key(channel, delivery_id), None)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest_key, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= self._max_age:
                return
            del self._seen[oldest_key]


def delivery_key(channel: str, delivery_id: str) -> bytes:
    """A fixed-size key, so a long signature or header costs no more memory than a short one."""
    return hashlib.blake2b(f"{channel}\0{delivery_id}".encode(), digest_size=16).digest()


def body_digest(body: bytes) -> str:
    """The delivery name of a request that carries no signature: its body's SHA-256."""
    return hashlib.sha256(body).hexdigest()
