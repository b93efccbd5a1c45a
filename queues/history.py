"""The customer's 360° history: every message and reply across all their cases and channels,
with the escalations and promises made to them, in time order, a page at a time.

A customer's history covers every customer merged into the same one (`customer_merges`,
projected from `customers.identity`): a merge brings the merged customer's past cases in,
a split takes them out again. Pages are cut by an opaque cursor (the position of the last
entry), so entries written meanwhile neither repeat nor go missing between pages.

Every query walks an index: cases by `ix_cases_customer_id`, messages by
`ix_messages_case_id_sent_at`, events by `ix_case_events_case_id_at`, merges by their key
and `ix_customer_merges_merged_into`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, tuple_
from sqlalchemy.orm import Session

from queues.models import CaseEventRow, CaseRow, CustomerMergeRow, MessageRow
from queues.store import rfc3339

MAX_PAGE = 200
"""Most entries one page holds."""
MAX_GROUP = 500
"""Most customer ids one history gathers through merges (a guard against runaway merges)."""
SUMMARY_FIELDS = 24
SUMMARY_CHARS = 200
SUMMARY_SKIPS = frozenset(
    {"message_key", "customer_id", "thread_ref", "in_reply_to", "event_id", "action_id"}
)
"""Payload fields a reader learns nothing from (ids the entry carries already, or plumbing)."""

LIFECYCLE_TYPES = ("case.resolved", "case.reopened", "sla.breached")
"""Case events always shown in a history, besides escalations and promises."""
EVENT_PATTERNS = ("%escalat%", "%acknowledg%", "%promise%", "%page%", "%paging%")
"""Case event types shown by what they are about, whoever writes them: escalations (the
stream's, the customer's, an agent's), pages and their acknowledgements, promises made."""
HIDDEN_PATTERNS = ("%.suppressed", "%failed")
"""Plumbing among those: an acknowledgement not sent, a page or reply not delivered."""

_MESSAGE, _EVENT = 0, 1


class BadCursorError(ValueError):
    """The cursor was not made by this module (or was altered)."""


@dataclass(frozen=True)
class Position:
    """Where an entry sits in a history: its time, its kind, its case, its own key."""

    at: datetime
    kind: int
    case_id: str
    key: str

    def encode(self) -> str:
        """The opaque cursor of this position."""
        raw = json.dumps(
            [self.at.isoformat(), self.kind, self.case_id, self.key], ensure_ascii=False
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        """The position a cursor stands for; `BadCursorError` if it is not one."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            at, kind, case_id, key = json.loads(base64.urlsafe_b64decode(padded.encode()))
            moment = datetime.fromisoformat(at)
            if moment.tzinfo is None or kind not in (_MESSAGE, _EVENT):
                raise ValueError("not a position")
            return cls(moment, int(kind), str(case_id), str(key))
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as error:
            raise BadCursorError(f"not a history cursor: {cursor[:40]!r}") from error


@dataclass(frozen=True)
class HistoryPage:
    """One page of a customer's history and the cursor of the next (None: the end)."""

    customer_id: str
    customers: list[str]
    entries: list[dict[str, Any]]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "customer_id": self.customer_id,
            "customers": self.customers,
            "entries": self.entries,
            "next_cursor": self.next_cursor,
        }


def customer_group(session: Session, customer_id: str) -> list[str]:
    """The customer and everyone merged with them: the ids whose merges end where theirs does."""
    root, seen = customer_id, {customer_id}
    while True:
        merge = session.get(CustomerMergeRow, root)
        if merge is None or merge.merged_into in seen:
            break
        root = merge.merged_into
        seen.add(root)
    group, frontier = {root}, [root]
    while frontier and len(group) < MAX_GROUP:
        children = session.scalars(
            select(CustomerMergeRow.customer_id).where(CustomerMergeRow.merged_into.in_(frontier))
        )
        frontier = [child for child in children if child not in group]
        group.update(frontier)
    group.add(customer_id)  # even past the guard's limit
    return sorted(group)


def case_places(session: Session, customers: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """The distinct (queue, assignee) pairs of the customers' cases: what authorisation needs."""
    rows = session.execute(
        select(CaseRow.queue, CaseRow.assignee)
        .where(CaseRow.customer_id.in_(list(customers)))
        .distinct()
    )
    return [(queue, assignee) for queue, assignee in rows]


def history_page(
    session: Session, customer_id: str, *, cursor: str | None = None, limit: int = 50
) -> HistoryPage:
    """A page of the customer's history after `cursor` (from the start without one)."""
    limit = max(1, min(limit, MAX_PAGE))
    after = Position.decode(cursor) if cursor else None
    customers = customer_group(session, customer_id)
    entries = sorted(
        [
            *_messages(session, customers, after, limit + 1),
            *_events(session, customers, after, limit + 1),
        ],
        key=lambda item: _sort_key(item[0]),
    )
    page = entries[:limit]
    more = len(entries) > limit
    return HistoryPage(
        customer_id=customer_id,
        customers=customers,
        entries=[entry for _position, entry in page],
        next_cursor=page[-1][0].encode() if more and page else None,
    )


def _sort_key(position: Position) -> tuple[datetime, int, str, str]:
    return (position.at, position.kind, position.case_id, position.key)


def _after(
    at: Any, case_id: Any, key: Any, kind: int, position: Position | None
) -> ColumnElement[bool] | None:
    """SQL: the rows of one kind that sort after `position` (time, kind, case, key)."""
    if position is None:
        return None
    if kind > position.kind:
        return at >= position.at  # type: ignore[no-any-return]
    if kind < position.kind:
        return at > position.at  # type: ignore[no-any-return]
    return or_(
        at > position.at,
        and_(at == position.at, tuple_(case_id, key) > tuple_(position.case_id, position.key)),
    )


def message_query(
    customers: Sequence[str], after: Position | None, limit: int
) -> Select[MessageRow, str | None, str]:
    """The customers' messages and replies after `after`, in history order (notes left out)."""
    query = (
        select(MessageRow, CaseRow.queue, CaseRow.customer_id)
        .join(CaseRow, CaseRow.case_id == MessageRow.case_id)
        .where(CaseRow.customer_id.in_(list(customers)), MessageRow.direction != "note")
        .order_by(MessageRow.sent_at, MessageRow.case_id, MessageRow.message_key)
        .limit(limit)
    )
    condition = _after(
        MessageRow.sent_at, MessageRow.case_id, MessageRow.message_key, _MESSAGE, after
    )
    return query if condition is None else query.where(condition)


def _messages(
    session: Session, customers: Sequence[str], after: Position | None, limit: int
) -> list[tuple[Position, dict[str, Any]]]:
    query = message_query(customers, after, limit)
    found = []
    for message, queue, customer in session.execute(query):
        entry = {
            "kind": "message",
            "at": rfc3339(message.sent_at),
            "case_id": message.case_id,
            "customer_id": customer,
            "queue": queue,
            "channel": message.channel,
            "direction": message.direction,
            "sender": message.sender,
            "subject": message.subject,
            "text": message.text,
            "message_key": message.message_key,
        }
        found.append(
            (Position(message.sent_at, _MESSAGE, message.case_id, message.message_key), entry)
        )
    return found


def event_query(
    customers: Sequence[str], after: Position | None, limit: int
) -> Select[CaseEventRow, str | None, str | None, str]:
    """The customers' shown case events after `after`, in history order."""
    shown = and_(
        or_(
            CaseEventRow.type.in_(LIFECYCLE_TYPES),
            *(CaseEventRow.type.like(pattern) for pattern in EVENT_PATTERNS),
        ),
        *(CaseEventRow.type.not_like(pattern) for pattern in HIDDEN_PATTERNS),
    )
    query = (
        select(CaseEventRow, CaseRow.queue, CaseRow.channel, CaseRow.customer_id)
        .join(CaseRow, CaseRow.case_id == CaseEventRow.case_id)
        .where(CaseRow.customer_id.in_(list(customers)), shown)
        .order_by(CaseEventRow.at, CaseEventRow.case_id, CaseEventRow.event_id)
        .limit(limit)
    )
    condition = _after(CaseEventRow.at, CaseEventRow.case_id, CaseEventRow.event_id, _EVENT, after)
    return query if condition is None else query.where(condition)


def _events(
    session: Session, customers: Sequence[str], after: Position | None, limit: int
) -> list[tuple[Position, dict[str, Any]]]:
    query = event_query(customers, after, limit)
    found = []
    for event, queue, channel, customer in session.execute(query):
        payload = event.payload if isinstance(event.payload, dict) else {}
        named = payload.get("channel")
        entry = {
            "kind": "event",
            "at": rfc3339(event.at),
            "case_id": event.case_id,
            "customer_id": customer,
            "queue": queue,
            "channel": named if isinstance(named, str) else channel,
            "type": event.type,
            "category": category(event.type),
            "reason": event.reason,
            "summary": summary(payload),
            "event_id": event.event_id,
        }
        found.append((Position(event.at, _EVENT, event.case_id, event.event_id), entry))
    return found


def category(event_type: str) -> str:
    """What a shown event is about: `escalation`, `promise` or `lifecycle`."""
    if "escalat" in event_type or "pag" in event_type or event_type.endswith("_by_agent"):
        return "escalation"
    if "acknowledg" in event_type or "promise" in event_type:
        return "promise"
    return "lifecycle"


def summary(payload: dict[str, Any]) -> dict[str, str]:
    """The payload's plain values (one level of nesting, dotted), each cut short: enough to
    read what an event of any type says without knowing its schema."""
    found: dict[str, str] = {}

    def take(prefix: str, values: dict[str, Any], depth: int) -> None:
        for name, value in values.items():
            if len(found) >= SUMMARY_FIELDS:
                return
            if name in SUMMARY_SKIPS:
                continue
            if isinstance(value, dict) and depth == 0:
                take(f"{prefix}{name}.", value, 1)
            elif isinstance(value, str | int | float | bool) and value != "":
                text = str(value)
                found[f"{prefix}{name}"] = (
                    text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"
                )

    take("", payload, 0)
    return found
