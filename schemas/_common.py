"""Small shared types used by every contract: priorities, channels and strict base models."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from schemas.channels import CHANNELS
from schemas.limits import (
    MAX_CHANNEL_LENGTH,
    MAX_ID_BYTES,
    MAX_ID_LENGTH,
    check_identifier_bytes,
)


class Priority(StrEnum):
    """Case priority, most urgent first. Relative changes move along this order."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for urgent up to 3 for low: smaller is more urgent."""
        return PRIORITY_ORDER.index(self)

    def shifted(self, steps: int) -> Priority:
        """Return the priority `steps` levels more urgent (negative: less), clamped to the range."""
        index = min(max(self.rank - steps, 0), len(PRIORITY_ORDER) - 1)
        return PRIORITY_ORDER[index]


PRIORITY_ORDER: tuple[Priority, ...] = (
    Priority.URGENT,
    Priority.HIGH,
    Priority.NORMAL,
    Priority.LOW,
)

KNOWN_CHANNELS: tuple[str, ...] = tuple(CHANNELS)
"""Channels Escalator's own connectors produce (the rows of `schemas.channels.CHANNELS`).
The field is open: any lowercase name is valid."""


def channel_label(channel: str) -> str:
    """A message's channel as a metric label: a known channel, or `other`, so senders cannot
    mint label values (each one a new time series in every Prometheus that scrapes us)."""
    return channel if channel in KNOWN_CHANNELS else "other"


ChannelName = Annotated[
    str,
    StringConstraints(pattern=rf"^[a-z][a-z0-9_-]{{0,{MAX_CHANNEL_LENGTH - 1}}}$"),
]
"""A channel name: lowercase letters, digits, `_` or `-`, starting with a letter."""

NonEmptyText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, strip_whitespace=True),
    AfterValidator(check_identifier_bytes),
    Field(json_schema_extra={"x-max-bytes": MAX_ID_BYTES}),
]
"""An identifier-like string that must not be blank, within `MAX_ID_LENGTH` and `MAX_ID_BYTES`."""


class Contract(BaseModel):
    """Base of every topic contract: unknown fields are rejected so typos surface early."""

    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=False)
