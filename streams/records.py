"""Records on the worker's internal repartition topics (`messages.resolved`, `messages.threaded`).

These are private to the worker; the public contracts are in `schemas`. They ignore fields they
do not know, so during a rolling upgrade a worker still on the previous release reads what a newer
one wrote (it drops the new fields) instead of failing the batch and restarting in a loop.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rules import CustomerHistory
from schemas import InboundMessage


class ResolvedMessage(BaseModel):
    """A valid message with its customer decided; keyed by `customer_id`."""

    model_config = ConfigDict(extra="ignore")

    customer_id: str
    message: InboundMessage
    ingested_at: AwareDatetime
    identity_evidence: str


class HistoryRecord(BaseModel):
    """The customer's earlier cases when the message arrived, as stage B counted them."""

    model_config = ConfigDict(extra="ignore")

    cases: int = Field(default=0, ge=0)
    """The customer's other cases, opened before this message arrived."""
    recent_cases: int = Field(default=0, ge=0)
    """Those of them opened at most `window` before this message arrived."""
    window: timedelta
    """The history window (`ESCALATOR_HISTORY_WINDOW`) the recent cases were counted in."""

    def to_facts(self) -> CustomerHistory:
        """The `history.*` facts the rules see."""
        return CustomerHistory(cases=self.cases, recent_cases=self.recent_cases)


class ThreadedMessage(BaseModel):
    """A message with its case decided; keyed by `case_id`."""

    model_config = ConfigDict(extra="ignore")

    case_id: str
    customer_id: str
    opens_case: bool
    evidence: str
    message: InboundMessage
    ingested_at: AwareDatetime
    identity_evidence: str | None = None
    successor_case_id: str | None = None
    """Where stage C sends the message when this case cannot take it (resolved, unknown)."""
    history: HistoryRecord | None = None
    """The customer's history; absent on records written before it existed (counts as none)."""

    def history_facts(self) -> CustomerHistory:
        """The `history.*` facts for this message (no earlier cases when unknown)."""
        return self.history.to_facts() if self.history else CustomerHistory()

    @property
    def arrived_at(self) -> datetime:
        """Event time used for rules and clocks: when Kafka first took the message."""
        return self.ingested_at
