"""The dead-letter record on `messages.dlq`: why a record was refused, with its original bytes."""

from __future__ import annotations

import base64
import hashlib
import math
from datetime import datetime

from pydantic import AwareDatetime, Field

from schemas._common import Contract

DETAIL_CHARS = 4_000
"""Longest `detail` kept: an exception's text can be as large as the record it quotes."""

KEY_BYTES = 1_024
"""Longest original key carried; a longer one is only referenced (size and hash in `detail`)."""

_LETTER_OVERHEAD = 2_048
"""Bytes a dead letter needs besides the original value's base64 (fields, key, detail)."""


class DeadLetter(Contract):
    """A refused record. `original_b64` holds the exact bytes that were refused.

    When the original value is too large to travel in a dead letter (its base64 would pass
    the record limit), `original_b64` is empty and `original_omitted` is true: the letter
    then refers to the original by `source_topic`, `source_partition`, `source_offset`,
    `original_size` and `original_sha256`. A record that was never written (the broker
    refused it) has `source_offset` -1 and `source_topic` naming the topic it was meant for.
    """

    reason: str = Field(description="Short machine-readable reason, e.g. 'invalid_json'.")
    detail: str = Field(description="Human-readable explanation naming fields and problems.")
    source_topic: str
    source_partition: int
    source_offset: int
    original_key_b64: str | None = None
    original_b64: str
    at: AwareDatetime
    stage: str | None = Field(
        default=None,
        description="What refused it: intake, threading, cases, output, rules-watch, "
        "identity-watch, projection (absent on letters written before stages were named).",
    )
    original_size: int | None = Field(default=None, description="Bytes of the original value.")
    original_sha256: str | None = Field(
        default=None, description="Hex SHA-256 of the original value, to find and compare it."
    )
    original_omitted: bool = Field(
        default=False,
        description="True when the original value was too large to carry (see `source_*`).",
    )
    letter_id: str | None = Field(
        default=None,
        description="Deterministic id (stage, source and reason): a replay writes the same letter.",
    )

    @staticmethod
    def encode(raw: bytes | None) -> str | None:
        """Base64-encode raw bytes for the record (None stays None)."""
        return None if raw is None else base64.b64encode(raw).decode("ascii")

    def original_bytes(self) -> bytes:
        """The refused record's value, exactly as it was on the source topic."""
        return base64.b64decode(self.original_b64)

    @classmethod
    def of(
        cls,
        *,
        stage: str,
        reason: str,
        detail: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        at: datetime,
        max_bytes: int,
    ) -> DeadLetter:
        """A dead letter for one record that fits in `max_bytes` whatever the record held.

        The original value travels whole when its base64 fits; otherwise only its size and
        hash do. Everything is derived from the inputs, so the same record refused twice (a
        replay) gives the same letter.
        """
        raw = value or b""
        detail = detail if len(detail) <= DETAIL_CHARS else detail[:DETAIL_CHARS] + "…"
        carried_key = key if key is None or len(key) <= KEY_BYTES else None
        if key is not None and carried_key is None:
            key_digest = hashlib.sha256(key).hexdigest()
            detail += f" (key of {len(key)} bytes omitted, sha256 {key_digest})"
        omitted = 4 * math.ceil(len(raw) / 3) + _LETTER_OVERHEAD + len(detail) * 4 > max_bytes
        digest = hashlib.sha256(raw).hexdigest()
        identity = f"{stage}\n{topic}\n{partition}\n{offset}\n{reason}\n{digest}".encode()
        return cls(
            reason=reason,
            detail=detail,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            original_key_b64=cls.encode(carried_key),
            original_b64="" if omitted else cls.encode(raw) or "",
            at=at,
            stage=stage,
            original_size=len(raw),
            original_sha256=digest,
            original_omitted=omitted,
            letter_id=hashlib.sha256(identity).hexdigest()[:32],
        )
