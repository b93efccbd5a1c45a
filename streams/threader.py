"""Stage B, keyed by customer id: drop duplicates and decide which case a message joins.

A message joins a case, in this order of evidence, when:

1. it is a post in a public thread (a channel whose traits say `public_thread`, such as the
   forum): the thread's case (every post of a topic belongs to one case);
2. it carries a `thread_ref` or `in_reply_to` the customer's cases already have;
3. its subject or text quotes a case reference (`C-` + 10 characters, e.g. `[#C-AB2CD3EF4G]`),
   on any channel, whoever's case it is;
4. the customer has an open case whose last message is within the threading window.

Otherwise it opens a new case. Auto-replies and bounces may join a case (as notes) but
never open one. The case id of a new case is derived from the customer and the message,
so a replay decides the same. Whether the chosen case can still take the message (it may
be resolved past the reopen window, or unknown) is stage C's call: it then moves the
message to the case's deterministic successor (`successor_case_id`).

Every threaded message carries the customer's history (`history.*` in rules: their other
cases, and those opened within the history window), counted from this state and the
message's arrival time only, so a replay counts the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas import InboundMessage, channel_traits
from schemas.ids import case_id_for, case_references, successor_case_id, thread_case_id
from streams.records import HistoryRecord, ResolvedMessage, ThreadedMessage

DEDUP_RETENTION = timedelta(days=7)
"""How long a message key is remembered for deduplication."""

NEW_CASE_EVIDENCE = "no open case for this customer: new case"

MAX_THREAD_REFS = 500
"""Thread references remembered per customer (the oldest are forgotten first)."""

MAX_SEEN = 1_000
"""Message keys remembered per customer for deduplication (the oldest are forgotten first)."""

MAX_REMEMBERED_CHARS = 150_000
"""Most characters of message keys, and of thread references, remembered per customer: ids
may be 1 KB each, and the customer's state must stay far under the record limit."""

LONGEST_ID = 1_100
"""Most characters of one message key or thread reference (`channel:` + a 1,024-char id)."""


@dataclass(frozen=True)
class ThreadingPolicy:
    """The windows of threading (settings `ESCALATOR_THREAD_WINDOW`, `ESCALATOR_REOPEN_WINDOW`)."""

    thread_window: timedelta = timedelta(days=7)
    """An open case takes the customer's next message if its last one is at most this old."""
    reopen_window: timedelta = timedelta(days=7)
    """A resolved case reopens for a message at most this long after it was resolved."""
    history_window: timedelta = timedelta(days=30)
    """`history.recent_cases` counts the customer's cases opened at most this long ago."""


@dataclass(frozen=True)
class NotThreaded:
    """A message that joins no case, and why (`duplicate`, `auto_reply_without_case`)."""

    reason: str
    detail: str


def is_auto_reply(message: InboundMessage) -> bool:
    """Whether the connector tagged the message as automatic (auto-reply, bounce, bulk)."""
    return bool(message.metadata.get("auto_reply")) or "auto_reply" in _tags(message)


def is_forum_answer(message: InboundMessage) -> bool:
    """A forum post by staff, or an answer accepted as the solution: not a customer contact.

    Only on channels whose traits say answers are given there (`staff_answers`).
    """
    metadata = message.metadata
    return channel_traits(message.channel).staff_answers and bool(
        metadata.get("staff") or metadata.get("accepted_answer")
    )


def _in_public_thread(message: InboundMessage) -> bool:
    """A message in a public thread (a forum topic): it joins the thread's one case."""
    return bool(message.thread_ref) and channel_traits(message.channel).public_thread


def _starts_topic(message: InboundMessage) -> bool:
    """A forum post that opens its topic (its author is the one asking)."""
    return message.metadata.get("kind") == "topic"


def _tags(message: InboundMessage) -> list[str]:
    tags = message.metadata.get("tags")
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


class CustomerState(BaseModel):
    """What stage B keeps per customer (a faust table row, JSON in the changelog)."""

    model_config = ConfigDict(extra="ignore")

    customer_id: str
    open_case_id: str | None = None
    open_case_at: datetime | None = None
    thread_refs: dict[str, str] = Field(default_factory=dict)
    seen: dict[str, tuple[str, datetime]] = Field(default_factory=dict)
    case_ids: list[str] = Field(default_factory=list)
    opened: dict[str, datetime] = Field(default_factory=dict)
    """The customer's cases with when they opened (the history; state without it still loads)."""


def thread(
    state: CustomerState | None,
    resolved: ResolvedMessage,
    policy: ThreadingPolicy | None = None,
    now: datetime | None = None,
) -> tuple[CustomerState, ThreadedMessage | NotThreaded]:
    """Decide the case of a message: the new state and the threaded message, or why none.

    `now` is the wall clock: keys are forgotten by the message's arrival time, but never
    by a time later than `now`, so one record stamped in the future cannot wipe them.
    """
    policy = policy or ThreadingPolicy()
    message = resolved.message
    at = resolved.ingested_at
    state = state or CustomerState(customer_id=resolved.customer_id)
    key = message.message_key
    if key in state.seen:
        return state, NotThreaded("duplicate", f"{key} was already processed")
    state = _changeable(state)
    automatic = is_auto_reply(message)
    staff = is_forum_answer(message)
    case_id, evidence = _existing_case(state, resolved, policy)
    opens = False
    if case_id is None and message.thread_ref and _in_public_thread(message):
        case_id = thread_case_id(message.channel, message.thread_ref)
        evidence = f"forum topic {message.thread_ref}"
        opens = not (automatic or staff)
    if case_id is None:
        if automatic:
            state.seen[key] = ("", at)
            reason = message.metadata.get("auto_reply_reason") or "tagged auto_reply"
            return state, NotThreaded(
                "auto_reply_without_case", f"{key}: automatic message ({reason}) opens no case"
            )
        case_id = case_id_for(resolved.customer_id, key)
        evidence = (
            f"new case: {evidence}" if evidence else "no open case for this customer: new case"
        )
        opens = True
        state.case_ids.append(case_id)
        _trim_list(state.case_ids, MAX_THREAD_REFS)
    history = _history(state, case_id, at, policy.history_window)
    if opens and (case_id in state.case_ids or _starts_topic(message)):
        state.opened.setdefault(case_id, at)  # a new case, or a forum topic this customer started
        _trim(state.opened, MAX_THREAD_REFS)
    joined_someone_elses_topic = evidence.startswith("forum topic") and not _starts_topic(message)
    if not (automatic or staff or joined_someone_elses_topic):
        state.open_case_id = case_id
        state.open_case_at = at
    if message.thread_ref:
        state.thread_refs[message.thread_ref] = case_id
        _trim(state.thread_refs, MAX_THREAD_REFS)
        _trim_chars(state.thread_refs, MAX_REMEMBERED_CHARS)
    state.seen[key] = (case_id, at)
    _forget_old(state, at if now is None else min(at, now))
    return state, ThreadedMessage(
        case_id=case_id,
        customer_id=resolved.customer_id,
        opens_case=opens,
        evidence=evidence,
        message=message,
        ingested_at=at,
        identity_evidence=resolved.identity_evidence,
        successor_case_id=successor_case_id(resolved.customer_id, case_id),
        history=history,
    )


def _changeable(state: CustomerState) -> CustomerState:
    """A copy `thread` may change in place: its lists and dicts copied, their items shared.

    The items (ids, times, tuples of them) are never changed in place, so one level is
    enough; a deep copy cost as much as threading the message.
    """
    return state.model_copy(
        update={
            "thread_refs": dict(state.thread_refs),
            "seen": dict(state.seen),
            "case_ids": list(state.case_ids),
            "opened": dict(state.opened),
        }
    )


def _history(state: CustomerState, case_id: str, at: datetime, window: timedelta) -> HistoryRecord:
    """The customer's cases other than `case_id`, and those opened within `window` of `at`.

    Cases remembered only by id (state written before the history existed) count as
    cases, not as recent ones: when they opened is not known.
    """
    recent = sum(
        1
        for other, opened_at in state.opened.items()
        if other != case_id and at - opened_at <= window
    )
    others = {other for other in (*state.case_ids, *state.opened) if other != case_id}
    return HistoryRecord(cases=len(others), recent_cases=recent, window=window)


def _existing_case(
    state: CustomerState, resolved: ResolvedMessage, policy: ThreadingPolicy
) -> tuple[str | None, str]:
    """The case the evidence points to, and the evidence in words ("" when none)."""
    message = resolved.message
    if _in_public_thread(message):
        return None, ""  # forum posts go to their topic's case
    for ref in (message.thread_ref, message.in_reply_to):
        if ref and ref in state.thread_refs:
            return state.thread_refs[ref], f"same thread ({ref})"
    for where, text in (("subject", message.subject), ("text", message.text)):
        references = case_references(text)
        if references:
            return references[0], f"case reference {references[0]} in the {where}"
    if state.open_case_id:
        last = state.open_case_at
        if last is None or resolved.ingested_at - last <= policy.thread_window:
            return state.open_case_id, "customer has an open case"
        return None, (
            f"the customer's case {state.open_case_id} had no message within the threading "
            f"window ({policy.thread_window})"
        )
    return None, ""


def _trim_list(items: list[str], limit: int) -> None:
    del items[:-limit]


def _trim(mapping: dict[str, Any], limit: int) -> None:
    while len(mapping) > limit:
        del mapping[next(iter(mapping))]


def shrunk_customer(state: CustomerState) -> CustomerState | None:
    """The state remembering the newer half of its keys, references and cases; None if bare.

    For a state whose record would pass the limit even within the caps (ids of characters
    that JSON escapes to six bytes each).
    """
    kept = {
        name: _newer_half(getattr(state, name))
        for name in ("seen", "thread_refs", "case_ids", "opened")
        if len(getattr(state, name)) > 1
    }
    return state.model_copy(update=kept) if kept else None


def _newer_half(items: Any) -> Any:
    if isinstance(items, dict):
        return dict(list(items.items())[len(items) // 2 :])
    return items[len(items) // 2 :]


def _trim_chars(mapping: dict[str, Any], limit: int) -> None:
    """Forget the oldest keys while the keys hold more than `limit` characters."""
    if len(mapping) * LONGEST_ID <= limit:  # cannot be over: no need to count
        return
    total = sum(map(len, mapping))
    while total > limit and len(mapping) > 1:
        oldest = next(iter(mapping))
        total -= len(oldest)
        del mapping[oldest]


def _forget_old(state: CustomerState, now: datetime) -> None:
    """Forget keys seen more than the retention before `now`, and the oldest past the caps."""
    horizon = now - DEDUP_RETENTION
    stale = [key for key, (_case, seen_at) in state.seen.items() if seen_at < horizon]
    for key in stale:
        del state.seen[key]
    _trim(state.seen, MAX_SEEN)
    _trim_chars(state.seen, MAX_REMEMBERED_CHARS)
