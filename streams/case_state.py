"""What stage C keeps per case: its routing, history, facts for rules and SLA clock state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

from rules import CaseFacts, CustomerHistory, PlannedEscalation, clocks
from schemas import CaseMessage, CaseStatus, ClockName, ClockState, Priority, SlaClockView

MESSAGES_KEPT = 20
"""Latest messages a case carries in its state and on its queue record."""

ACTIONS_REMEMBERED = 200
"""Agent action ids remembered per case, so a redelivered action is applied once."""

WINDOW_TEXT_CHARS = 2_000
"""Longest text a message keeps in the case's window (state and queue record); the whole
message is in its `message.appended` event and the case store."""

WINDOW_SUBJECT_CHARS = 500
"""Longest subject a message keeps in the case's window."""

MESSAGE_KEYS_KEPT = 500
"""Message keys a case remembers (its second line of deduplication after stage B's)."""

MESSAGE_KEYS_CHARS = 100_000
"""Most characters of message keys a case remembers (keys can be 1 KB each)."""

TRUNCATED_TAG = "truncated"
"""Tag of a message whose text or subject the window cut (the event log has it whole)."""


def windowed(messages: list[CaseMessage], latest: CaseMessage) -> list[CaseMessage]:
    """The case's bounded window after `latest`: the last `MESSAGES_KEPT` messages, each cut
    to `WINDOW_TEXT_CHARS` (so 20 messages of 100,000 characters stay far under a record)."""
    return [*messages, _in_window(latest)][-MESSAGES_KEPT:]


def _in_window(message: CaseMessage) -> CaseMessage:
    subject = message.subject
    if len(message.text) <= WINDOW_TEXT_CHARS and len(subject or "") <= WINDOW_SUBJECT_CHARS:
        return message
    return message.model_copy(
        update={
            "text": message.text[:WINDOW_TEXT_CHARS],
            "subject": subject[:WINDOW_SUBJECT_CHARS] if subject else subject,
            "tags": [*message.tags, TRUNCATED_TAG],
        }
    )


def shrunk(state: CaseState) -> CaseState | None:
    """The state with half its window, keys and action ids (the latest kept); None if bare.

    For a state whose record would pass the limit even so (ids and texts of characters that
    JSON escapes to six bytes each): what the state forgets is still in the event log.
    """
    bare = (state.messages[1:], state.message_keys[1:], state.processed_actions[1:])
    if not any(bare):
        return None
    return state.model_copy(
        update={
            "messages": state.messages[len(state.messages) // 2 :],
            "message_keys": state.message_keys[len(state.message_keys) // 2 :],
            "processed_actions": state.processed_actions[len(state.processed_actions) // 2 :],
        }
    )


def remember_key(keys: list[str], key: str) -> None:
    """Add a message key to a case's keys, forgetting the oldest past the count and size."""
    keys.append(key)
    excess = len(keys) - MESSAGE_KEYS_KEPT
    if excess > 0:
        del keys[:excess]
    if len(keys) * 1_100 > MESSAGE_KEYS_CHARS:  # else it cannot be over: no need to count
        total = sum(map(len, keys))
        while total > MESSAGE_KEYS_CHARS and len(keys) > 1:
            total -= len(keys.pop(0))


def _parsed_clocks(value: Any) -> clocks.CaseClocks | None:
    """The clock state as the engine holds it, from itself or from the JSON data it wrote."""
    if value is None or isinstance(value, clocks.CaseClocks):
        return value
    if isinstance(value, dict):
        return clocks.CaseClocks.from_dict(value)
    raise ValueError(f"clock state must be an object, not {type(value).__name__}")


def _clocks_data(value: clocks.CaseClocks | None) -> dict[str, Any] | None:
    return None if value is None else value.to_dict()


HeldClocks = Annotated[
    clocks.CaseClocks | None,
    PlainValidator(_parsed_clocks),
    PlainSerializer(_clocks_data, return_type=dict[str, Any] | None),
]
"""A case's clock state: the engine's frozen value in memory, its `to_dict` data in JSON.

Stage C runs the clocks several times per record; holding them parsed means they are
converted to JSON once, when the state is written, and parsed once, when it is read."""


OPEN_PAGES_KEPT = 20
"""Open pages a case remembers (to acknowledge and resolve them at their providers)."""


class OpenPage(BaseModel):
    """A page run (one incident at the provider) not yet resolved: what was paged, and whether
    someone acknowledged it. `key` is the provider's dedup key / alias."""

    model_config = ConfigDict(extra="ignore")

    key: str
    pager: str
    targets: list[dict[str, Any]] = Field(default_factory=list)
    first_paged_at: datetime
    pages: int = 0
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_action: str | None = None


class CaseState(BaseModel):
    """What stage C keeps per case (a faust table row, JSON in the changelog)."""

    model_config = ConfigDict(extra="ignore")

    case_id: str
    customer_id: str
    opened_at: datetime
    status: CaseStatus = CaseStatus.NEW
    queue: str | None = None
    decided_queue: str | None = None
    priority: Priority | None = None
    tags: list[str] = Field(default_factory=list)
    matched: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    messages: list[CaseMessage] = Field(default_factory=list)
    message_keys: list[str] = Field(default_factory=list)
    contacts: int = 0
    agent_replies: int = 0
    reopened: int = 0
    last_customer_message_at: datetime | None = None
    awaiting_reply_since: datetime | None = None
    last_agent_reply_at: datetime | None = None
    resolved_at: datetime | None = None
    rules_version: str | None = None
    sla: dict[str, SlaClockView] = Field(default_factory=dict)
    sla_policy: str | None = None
    escalation_policy: str | None = None
    policy_rule: str | None = None
    clocks: HeldClocks = None
    next_deadline: datetime | None = None
    claimed_by: str | None = None
    assignment_pending: bool = False
    processed_actions: list[str] = Field(default_factory=list)
    channel_switches: int = 0
    """How often consecutive customer messages changed channel (email → tweet → sms = 2)."""
    last_customer_channel: str | None = None
    open_pages: list[OpenPage] = Field(default_factory=list)
    """Pages sent for the case and not yet resolved (see `streams.paging`)."""
    customer_escalations: int = 0
    """How often the customer asked to escalate through their acknowledgement's link."""
    acknowledgement: str | None = None
    """The acknowledgement template the customer was last acknowledged with."""
    acknowledged_clock: str | None = None
    acknowledged_due: datetime | None = None
    """What the customer was last promised: this clock's due time (an update tells them sooner)."""
    acknowledged_zone: str | None = None
    acknowledged_to: dict[str, str | None] | None = None
    """Where the acknowledgement went (channel, recipient, thread): an update goes there too."""
    escalate_link: str | None = None

    def changeable(self) -> CaseState:
        """A copy stage C may change without touching this state.

        Stage C replaces values (messages, clocks, views, events are rebuilt, never edited)
        but appends to some lists, so the lists and dicts are copied one level deep and the
        rest is shared: a full deep copy cost a third of applying a message.
        """
        return self.model_copy(
            update={name: copy(getattr(self, name)) for name, copy in _CONTAINERS.items()}
        )

    def note_customer_channel(self, channel: str) -> None:
        """Count a channel switch if this customer message came on another channel than the last.

        State written before this fact existed has no `last_customer_channel`; the latest
        inbound message it kept stands in for it.
        """
        previous = self.last_customer_channel or next(
            (m.channel for m in reversed(self.messages) if m.direction == "inbound"), None
        )
        if previous is not None and previous != channel:
            self.channel_switches += 1
        self.last_customer_channel = channel

    def facts(self, at: datetime, history: CustomerHistory | None = None) -> CaseFacts:
        """The `case.*` facts (and the customer's `history.*`) for a message arriving at `at`."""
        waiting = self.awaiting_reply_since
        return CaseFacts(
            contacts=self.contacts,
            channels=tuple(self.channels),
            age=at - self.opened_at,
            reopened=self.reopened,
            status=self.status.value,
            unanswered_for=at - waiting if waiting else timedelta(0),
            agent_replies=self.agent_replies,
            priority=self.priority,
            channel_switches=self.channel_switches,
            customer_escalations=self.customer_escalations,
            history=history or CustomerHistory(),
        )


def state_dictionary() -> bytes:
    """Typical JSON of a case state: the preset dictionary its in-memory compression uses.

    Field names, clock and timer structure and common values, with no customer text: a
    held state then costs little more than what is particular to its case.
    """
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    step = PlannedEscalation(on="breach", clock=None, queue="tier2", priority="+1", repeat=0)
    clock = clocks.SlaClock(
        name=ClockName.FIRST_RESPONSE.value,
        state=ClockState.RUNNING,
        started_at=at,
        target="8h",
        due_at=at,
        warn_at=at,
    )
    case_clocks = clocks.CaseClocks(
        policy="standard",
        calendar="business-hours",
        priority=Priority.NORMAL,
        status=CaseStatus.OPEN.value,
        opened_at=at,
        as_of=at,
        escalation_policy="standard",
        rule="vip",
        routed_at=at,
        unclaimed_since=at,
        clocks=(clock, *(replace(clock, name=name) for name in clocks.CLOCK_NAMES[1:])),
        timers=(clocks.EscalationTimer(0, "breach:first_response#1", at, at, step),),
    )
    message = CaseMessage(
        channel="email", text="", sent_at=at, sender="", external_id="", subject=""
    )
    sample = CaseState(
        case_id="C-0000000000",
        customer_id="cus-00000000",
        opened_at=at,
        status=CaseStatus.OPEN,
        queue="general",
        decided_queue="general",
        priority=Priority.NORMAL,
        channels=["email"],
        messages=[message, message.model_copy(update={"direction": "outbound"})],
        message_keys=["email:"],
        last_customer_message_at=at,
        awaiting_reply_since=at,
        last_agent_reply_at=at,
        rules_version="sha256:000000000000",
        sla={
            name: SlaClockView(due_at=at, state=ClockState.RUNNING) for name in clocks.CLOCK_NAMES
        },
        sla_policy="standard",
        escalation_policy="standard",
        policy_rule="vip",
        clocks=case_clocks,
        next_deadline=at,
        claimed_by="agent",
        processed_actions=["00000000-0000-0000-0000-000000000000"],
    )
    return sample.model_dump_json().encode("utf-8")


_CONTAINERS: dict[str, Any] = {
    "tags": list,
    "matched": list,
    "channels": list,
    "messages": list,
    "message_keys": list,
    "processed_actions": list,
    "sla": dict,
    # an acknowledgement marks the open pages themselves: each is copied too
    "open_pages": lambda pages: [page.model_copy() for page in pages],
    # replaced whole by an acknowledgement, but copied so no copy ever shares it
    "acknowledged_to": lambda target: None if target is None else dict(target),
}
"""The list and dict fields `CaseState.changeable` copies (`clocks` is a frozen value)."""
