"""Records on the worker's internal repartition topics (`messages.resolved`, `messages.threaded`).

These are private to the worker; the public contracts are in `schemas`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas import InboundMessage


class ResolvedMessage(BaseModel):
    """A valid message with its customer decided; keyed by `customer_id`."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str
    message: InboundMessage
    ingested_at: AwareDatetime
    identity_evidence: str


class ThreadedMessage(BaseModel):
    """A message with its case decided; keyed by `case_id`."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    customer_id: str
    opens_case: bool
    evidence: str
    message: InboundMessage
    ingested_at: AwareDatetime
    identity_evidence: str | None = None
    successor_case_id: str | None = None
    """Where stage C sends the message when this case cannot take it (resolved, unknown)."""

    @property
    def arrived_at(self) -> datetime:
        """Event time used for rules and clocks: when Kafka first took the message."""
        return self.ingested_at
