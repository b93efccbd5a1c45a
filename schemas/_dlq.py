"""The dead-letter record on `messages.dlq`: why a record was refused, with its original bytes."""

from __future__ import annotations

import base64

from pydantic import AwareDatetime, Field

from schemas._common import Contract


class DeadLetter(Contract):
    """A refused record. `original_b64` holds the exact bytes that were refused."""

    reason: str = Field(description="Short machine-readable reason, e.g. 'invalid_json'.")
    detail: str = Field(description="Human-readable explanation naming fields and problems.")
    source_topic: str
    source_partition: int
    source_offset: int
    original_key_b64: str | None = None
    original_b64: str
    at: AwareDatetime

    @staticmethod
    def encode(raw: bytes | None) -> str | None:
        """Base64-encode raw bytes for the record (None stays None)."""
        return None if raw is None else base64.b64encode(raw).decode("ascii")

    def original_bytes(self) -> bytes:
        """The refused record's value, exactly as it was on the source topic."""
        return base64.b64decode(self.original_b64)
