"""The case event envelope on `cases.events`: the audit log of every decision, with its reason."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from schemas._common import Contract


class CaseEventType(StrEnum):
    """Every kind of case event. Consumers must ignore types they do not know."""

    CASE_OPENED = "case.opened"
    MESSAGE_APPENDED = "message.appended"
    CASE_ROUTED = "case.routed"


class CaseEvent(Contract):
    """One event about one case, keyed by `case_id`.

    `event_id` is deterministic: replaying the same input gives the same id, so
    consumers deduplicate on it. `reason` says in words why the decision was made.
    """

    event_id: str = Field(min_length=8, max_length=64)
    case_id: str
    type: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    at: AwareDatetime
    reason: str
    payload: dict[str, Any] = Field(default_factory=dict)
