"""What a rule test expects of a routing decision: the fields plain and timeline tests share."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RoutingExpectation(BaseModel):
    """The routing a test expects (queue, priority, tags, routes, SLA); only keys given count."""

    model_config = ConfigDict(extra="forbid")

    queue: str | None = None
    priority: Literal["urgent", "high", "normal", "low"] | None = None
    tags: list[str] | None = Field(default=None, description="Compared as a set.")
    matched: list[str] | None = Field(default=None, description="Route names, in order.")
    sla_policy: str | None = None
    sla: dict[str, datetime | None] | None = Field(
        default=None, description="Due time per clock; null means the clock must not run."
    )
