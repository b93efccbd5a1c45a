"""Who may publish through `POST /v1/messages`, and which fields of theirs are believed.

A caller presents an API key (`Authorization: Bearer eik_...`, see `connectors.ingress_keys`).
The key decides the channels the caller may publish to (403 otherwise) and the trust fields it
may set (`TRUST_FIELDS`: a customer id, verified handles, staff and accepted answers; 422
naming the field otherwise). Without a valid key the answer is 401 before the body is read.

`ESCALATOR_INGRESS_AUTH=none` turns all of this off (`IngressAuth.without_keys`): every caller
may publish anything and is believed, as before keys existed. It is meant for development and
for an ingress that only trusted systems can reach, and the ingress warns at start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors import ingress_keys
from connectors.ingress_keys import ALL_CHANNELS, TRUST_FIELDS
from schemas import InboundMessage

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 0.0
"""How often the keys file is looked at for changes: a `stat` (about a microsecond) on every
request, so a revoked key stops working on the next request after the file changed."""


@dataclass(frozen=True)
class Refusal:
    """An answer refusing a request: status, short error name, detail, extra headers."""

    status: int
    error: str
    detail: Any
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the key's name, its channels and its trust fields."""

    name: str
    channels: frozenset[str]
    trust: frozenset[str]

    def may_publish(self, channel: str) -> bool:
        """Whether the caller may publish messages of `channel`."""
        return ALL_CHANNELS in self.channels or channel in self.channels


ANYONE = Caller("anonymous", frozenset({ALL_CHANNELS}), frozenset(TRUST_FIELDS))
"""The caller when authentication is off: everything allowed, everything believed."""


def trust_fields_set(message: InboundMessage) -> list[str]:
    """The trust fields a message sets (with a value the pipeline would act on)."""
    customer, metadata = message.customer, message.metadata
    present = {
        "customer.id": customer.id is not None,
        "customer.verified": bool(customer.verified),
        "metadata.staff": bool(metadata.get("staff")),
        "metadata.accepted_answer": bool(metadata.get("accepted_answer")),
        "metadata.escalation_request": bool(metadata.get("escalation_request")),
    }
    return [field for field in TRUST_FIELDS if present[field]]


class KeyRing:
    """The active keys of a keys file, by hash; re-read when the file changes."""

    def __init__(
        self,
        path: Path,
        check_every_seconds: float = RELOAD_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._check_every = check_every_seconds
        self._clock = clock
        self._checked_at = clock()
        self._stamp = self._file_stamp()
        self._by_hash: dict[str, Caller] = {}
        if self._stamp is None:
            log.warning("ingress keys file %s does not exist (yet): no key is valid", path)
        else:
            self._by_hash = self._read()  # at start an invalid file is fatal (ValueError)

    def __len__(self) -> int:
        self._refresh()
        return len(self._by_hash)

    def caller(self, key: str) -> Caller | None:
        """The caller a key belongs to, or None for an unknown or revoked key."""
        self._refresh()
        return self._by_hash.get(ingress_keys.key_hash(key))

    def _read(self) -> dict[str, Caller]:
        keys = ingress_keys.load(self._path)
        return {
            key.sha256: Caller(key.name, frozenset(key.channels), frozenset(key.trust))
            for key in keys.keys
            if key.active
        }

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _refresh(self) -> None:
        now = self._clock()
        if now - self._checked_at < self._check_every:
            return
        self._checked_at = now
        stamp = self._file_stamp()
        if stamp == self._stamp or stamp is None:
            return  # unchanged, or missing for a moment (a Secret volume swaps its link)
        try:
            self._by_hash = self._read()
        except (OSError, ValueError) as error:
            # keep the keys we have: refusing every caller over a bad edit would be an outage
            log.error("ingress keys file not reloaded, keeping the previous keys: %s", error)
            return
        finally:
            self._stamp = stamp
        log.info("ingress keys reloaded from %s: %d active", self._path, len(self._by_hash))


class IngressAuth:
    """The ingress's authentication policy: a key ring, none configured, or switched off."""

    def __init__(self, keys: KeyRing | None, enabled: bool = True) -> None:
        self._keys = keys
        self._enabled = enabled

    @classmethod
    def without_keys(cls) -> IngressAuth:
        """Authentication off (`ESCALATOR_INGRESS_AUTH=none`): anyone, believed."""
        return cls(None, enabled=False)

    @classmethod
    def from_keys_file(cls, path: Path | None) -> IngressAuth:
        """Keys from `path`; with no path every request is refused (there is no key)."""
        return cls(KeyRing(path) if path is not None else None)

    @property
    def enabled(self) -> bool:
        """False when authentication is switched off."""
        return self._enabled

    def authenticate(self, authorization: str | None) -> Caller | Refusal:
        """The caller an `Authorization` header proves, or a 401 Refusal."""
        if not self._enabled:
            return ANYONE
        challenge = {"WWW-Authenticate": 'Bearer realm="escalator-ingress"'}
        scheme, _, key = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return Refusal(401, "unauthorized", "send Authorization: Bearer <key>", challenge)
        if self._keys is None:
            detail = "no ingress keys are configured (ESCALATOR_INGRESS_KEYS_FILE)"
            return Refusal(401, "unauthorized", detail, challenge)
        caller = self._keys.caller(key.strip())
        if caller is None:
            return Refusal(401, "unauthorized", "unknown or revoked key", challenge)
        return caller

    def check(self, messages: Sequence[InboundMessage], caller: Caller) -> Refusal | None:
        """A 403 for a channel the caller may not publish to, a 422 for each trust field it
        may not set (naming message index and field), or None when all may pass."""
        forbidden = [
            {
                "index": index,
                "field": "channel",
                "problem": f"key {caller.name!r} may not publish to {message.channel!r}",
            }
            for index, message in enumerate(messages)
            if not caller.may_publish(message.channel)
        ]
        if forbidden:
            return Refusal(403, "channel_not_allowed", forbidden)
        untrusted = [
            {
                "index": index,
                "field": field,
                "problem": f"key {caller.name!r} is not trusted to set {field} "
                f"(it {TRUST_FIELDS[field]}); see `escalator ingress keys add --trust`",
            }
            for index, message in enumerate(messages)
            for field in trust_fields_set(message)
            if field not in caller.trust
        ]
        if untrusted:
            return Refusal(422, "untrusted_field", untrusted)
        return None
