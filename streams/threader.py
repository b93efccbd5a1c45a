"""Stage B, keyed by customer id: drop duplicates and decide which case a message joins.

A message joins a case when it carries a `thread_ref` the customer's case already has,
or when the customer has an open case; otherwise it opens a new one. The case id of a
new case is derived from the customer and the message, so a replay decides the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from schemas.ids import case_id_for
from streams.records import ResolvedMessage, ThreadedMessage

DEDUP_RETENTION = timedelta(days=7)
"""How long a message key is remembered for deduplication."""

MAX_THREAD_REFS = 500
"""Thread references remembered per customer (the oldest are forgotten first)."""


class CustomerState(BaseModel):
    """What stage B keeps per customer (a faust table row, JSON in the changelog)."""

    model_config = ConfigDict(extra="ignore")

    customer_id: str
    open_case_id: str | None = None
    thread_refs: dict[str, str] = Field(default_factory=dict)
    seen: dict[str, tuple[str, datetime]] = Field(default_factory=dict)
    case_ids: list[str] = Field(default_factory=list)


def thread(
    state: CustomerState | None, resolved: ResolvedMessage
) -> tuple[CustomerState, ThreadedMessage | None]:
    """Decide the case of a message. Returns the new state and None for a duplicate."""
    message = resolved.message
    state = state or CustomerState(customer_id=resolved.customer_id)
    key = message.message_key
    if key in state.seen:
        return state, None
    state = state.model_copy(deep=True)
    case_id, evidence = _existing_case(state, resolved)
    opens = case_id is None
    if case_id is None:
        case_id = case_id_for(resolved.customer_id, key)
        evidence = "no open case for this customer: new case"
        state.case_ids.append(case_id)
        state.open_case_id = case_id
    if message.thread_ref:
        state.thread_refs[message.thread_ref] = case_id
        _trim(state.thread_refs, MAX_THREAD_REFS)
    state.seen[key] = (case_id, resolved.ingested_at)
    _forget_old(state, resolved.ingested_at)
    return state, ThreadedMessage(
        case_id=case_id,
        customer_id=resolved.customer_id,
        opens_case=opens,
        evidence=evidence,
        message=message,
        ingested_at=resolved.ingested_at,
    )


def _existing_case(state: CustomerState, resolved: ResolvedMessage) -> tuple[str | None, str]:
    message = resolved.message
    for ref in (message.thread_ref, message.in_reply_to):
        if ref and ref in state.thread_refs:
            return state.thread_refs[ref], f"same thread ({ref})"
    if state.open_case_id:
        return state.open_case_id, "customer has an open case"
    return None, ""


def _trim(mapping: dict[str, str], limit: int) -> None:
    while len(mapping) > limit:
        del mapping[next(iter(mapping))]


def _forget_old(state: CustomerState, now: datetime) -> None:
    horizon = now - DEDUP_RETENTION
    stale = [key for key, (_case, seen_at) in state.seen.items() if seen_at < horizon]
    for key in stale:
        del state.seen[key]
