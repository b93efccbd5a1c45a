"""What the console's pages show, built from the case store: plain data for the templates.

The queue is every unresolved case of the agent's queues plus the cases they own, most
urgent first (the desk's order: priority, then the earliest SLA due time). A case page
adds the conversation on every channel, the customer's other cases, and the decisions
behind the case (its routing, SLA and ownership events) with their reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from queues.desk.directory import Agent, Role
from queues.desk.reads import UNRESOLVED_STATUSES, urgency_order
from queues.models import CaseRow, MessageRow
from schemas import CaseEventType, CaseStatus, ClockState

QUEUE_LIMIT = 200
"""Cases the queue page lists at most (the most urgent ones)."""

PREVIEW_CHARS = 140

COUNTING = (ClockState.RUNNING.value, ClockState.WARNING.value, ClockState.BREACHED.value)

DECISION_TYPES = frozenset(
    {
        CaseEventType.CASE_OPENED.value,
        CaseEventType.CASE_ROUTED.value,
        CaseEventType.CASE_CLAIMED.value,
        CaseEventType.CASE_ASSIGNED.value,
        CaseEventType.ACTION_REJECTED.value,
        CaseEventType.CASE_RELEASED.value,
        CaseEventType.CASE_STATUS_CHANGED.value,
        CaseEventType.CASE_TRANSFERRED.value,
        CaseEventType.CASE_RESOLVED.value,
        CaseEventType.CASE_REOPENED.value,
        CaseEventType.CASE_ACKNOWLEDGED.value,
        CaseEventType.CASE_CUSTOMER_ESCALATED.value,
        CaseEventType.ACKNOWLEDGEMENT_SUPPRESSED.value,
        CaseEventType.SLA_STARTED.value,
        CaseEventType.SLA_PAUSED.value,
        CaseEventType.SLA_RESUMED.value,
        CaseEventType.SLA_MET.value,
        CaseEventType.SLA_WARNING.value,
        CaseEventType.SLA_BREACHED.value,
        CaseEventType.CASE_ESCALATED.value,
        CaseEventType.CASE_ACKNOWLEDGED_BY_AGENT.value,
        CaseEventType.CASE_PAGES_RESOLVED.value,
        CaseEventType.PAGE_FAILED.value,
    }
)
"""Events shown in a case's decision log; messages and plain snapshots are shown elsewhere."""


_PAGING_ENDS = frozenset(
    {
        CaseEventType.CASE_ACKNOWLEDGED_BY_AGENT.value,
        CaseEventType.CASE_PAGES_RESOLVED.value,
        CaseEventType.CASE_RESOLVED.value,
    }
)


@dataclass(frozen=True)
class Clock:
    """One SLA clock as the console shows it: a countdown to `due_at` while it counts."""

    name: str
    state: str
    due_at: str | None
    warn_at: str | None

    @property
    def label(self) -> str:
        """`first response`, from `first_response`."""
        return self.name.replace("_", " ")

    @property
    def counting(self) -> bool:
        """Whether the clock runs down (running, warning or already breached)."""
        return self.state in COUNTING and self.due_at is not None


def clocks_of(sla: dict[str, Any]) -> list[Clock]:
    """The case's clocks, those that count first, earliest due first."""
    found = [
        Clock(
            name=name,
            state=str(view.get("state") or ClockState.RUNNING.value),
            due_at=view.get("due_at"),
            warn_at=view.get("warn_at"),
        )
        for name, view in sla.items()
        if isinstance(view, dict)
    ]
    return sorted(found, key=lambda clock: (not clock.counting, clock.due_at or "", clock.name))


def headline_clock(sla: dict[str, Any]) -> Clock | None:
    """The clock that decides the case's urgency: the earliest one that counts, if any."""
    clocks = clocks_of(sla)
    return clocks[0] if clocks else None


@dataclass(frozen=True)
class QueueItem:
    """One case in the agent's queue."""

    case_id: str
    queue: str | None
    priority: str | None
    status: str
    customer_id: str
    channel: str | None
    channels: list[str]
    assignee: str | None
    assignment_pending: bool
    mine: bool
    clock: Clock | None
    subject: str | None
    preview: str
    message_count: int
    opened_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class Message:
    """One message of the conversation."""

    channel: str
    direction: str
    sender: str | None
    subject: str | None
    text: str
    sent_at: str
    auth: dict[str, str] | None = None
    """Mail: SPF, DKIM and DMARC results and the From domain they judged."""
    escalation_request: bool = False
    """The customer's "still not solved?" request (through their acknowledgement's link)."""

    @property
    def auth_verdict(self) -> str:
        """`pass` when DMARC passed, `fail` otherwise: how the page colours the results."""
        return "pass" if (self.auth or {}).get("dmarc") == "pass" else "fail"

    @property
    def author(self) -> str:
        """Who wrote it, in words."""
        if self.direction == "outbound":
            return f"{self.sender or 'agent'} (reply)"
        if self.direction == "note":
            return f"{self.sender or 'agent'} (internal note)"
        return self.sender or "customer"


@dataclass(frozen=True)
class Decision:
    """One recorded decision about the case, with its reason in words."""

    type: str
    at: str
    reason: str
    matched: list[str] = field(default_factory=list)
    effects: list[tuple[str, str]] = field(default_factory=list)
    due: list[tuple[str, str]] = field(default_factory=list)
    """SLA due times the decision set, as (clock in words, RFC 3339)."""


@dataclass(frozen=True)
class CasePage:
    """Everything the case page shows."""

    case: dict[str, Any]
    clocks: list[Clock]
    messages: list[Message]
    routing: list[Decision]
    decisions: list[Decision]
    customer_cases: list[dict[str, Any]]
    mine: bool
    promises: list[dict[str, Any]] = field(default_factory=list)
    """What the customer was told about when they hear back (latest last)."""
    transfer_queues: list[str] = field(default_factory=list)
    """Other queues the agent may move the case to (queues they see)."""
    assignees: list[str] = field(default_factory=list)
    """Agents a lead may give the case to (members of its queue, not its owner)."""
    escalate_queues: list[str] | None = None
    """Queues the agent may escalate the case to; None when they may not escalate it."""

    @property
    def paging(self) -> bool:
        """Whether a page of the case waits for an acknowledgement (the latest paging event
        is a page, not an acknowledgement or a resolution)."""
        for event in reversed(self.case.get("events") or []):
            kind = event.get("type")
            if kind in _PAGING_ENDS:
                return False
            escalation = (event.get("payload") or {}).get("escalation")
            paged = isinstance(escalation, dict) and bool(escalation.get("page"))
            if kind == CaseEventType.CASE_ESCALATED.value and paged:
                return True
        return False

    @property
    def version(self) -> str:
        """Changes whenever anything shown changes: the page's script redraws only then."""
        events = self.case.get("events") or [{}]
        return f"{len(events)}:{events[-1].get('event_id', '')}:{self.case.get('updated_at')}"

    @property
    def resolved(self) -> bool:
        """Whether the case is resolved (only reopening makes sense then)."""
        return bool(self.case["status"] == CaseStatus.RESOLVED.value)


def queue_version(items: list[QueueItem]) -> str:
    """Changes whenever the listed cases or what is shown of them change."""
    return ";".join(
        f"{item.case_id}:{item.updated_at.isoformat()}:{item.message_count}" for item in items
    )


def my_queue(sessions: sessionmaker[Session], agent: Agent) -> list[QueueItem]:
    """Unresolved cases of the agent's queues and cases they own, most urgent first."""
    query = select(CaseRow).where(CaseRow.status.in_(UNRESOLVED_STATUSES))
    if agent.role is not Role.ADMIN:
        query = query.where(
            or_(CaseRow.queue.in_(sorted(agent.queues)), CaseRow.assignee == agent.name)
        )
    with sessions() as session:
        rows = list(session.scalars(urgency_order(query).limit(QUEUE_LIMIT)))
        latest = _latest_customer_messages(session, [row.case_id for row in rows])
    items = []
    for row in rows:
        message = latest.get(row.case_id)
        items.append(
            QueueItem(
                case_id=row.case_id,
                queue=row.queue,
                priority=row.priority,
                status=row.status,
                customer_id=row.customer_id,
                channel=row.channel,
                channels=list(row.channels),
                assignee=row.assignee,
                assignment_pending=row.assignment_pending,
                mine=row.assignee == agent.name,
                clock=headline_clock(row.sla),
                subject=message.subject if message else None,
                preview=_preview(message.text) if message else "",
                message_count=row.message_count,
                opened_at=row.opened_at,
                updated_at=row.updated_at,
            )
        )
    return items


def _latest_customer_messages(session: Session, case_ids: list[str]) -> dict[str, MessageRow]:
    if not case_ids:
        return {}
    latest: dict[str, MessageRow] = {}
    rows = session.scalars(
        select(MessageRow)
        .where(MessageRow.case_id.in_(case_ids), MessageRow.direction == "inbound")
        .order_by(MessageRow.sent_at, MessageRow.message_key)
    )
    for row in rows:
        latest[row.case_id] = row  # ordered by time: the last one wins
    return latest


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def case_page(
    history: dict[str, Any],
    agent: Agent,
    *,
    transfer_queues: list[str] | None = None,
    assignees: list[str] | None = None,
    escalate_queues: list[str] | None = None,
) -> CasePage:
    """The case page's data from the desk's case history (`DeskReads.history`)."""
    events = history.get("events", [])
    auth_of = _mail_auth_by_message(events)
    requests = {
        event["payload"].get("message_key")
        for event in events
        if event["type"] == CaseEventType.CASE_CUSTOMER_ESCALATED.value
    }
    return CasePage(
        case=history,
        clocks=clocks_of(history.get("sla") or {}),
        messages=[
            Message(
                channel=m["channel"],
                direction=m["direction"],
                sender=m.get("sender"),
                subject=m.get("subject"),
                text=m["text"],
                sent_at=m["sent_at"],
                auth=auth_of.get(m.get("message_key", "")),
                escalation_request=m.get("message_key") in requests,
            )
            for m in history.get("messages", [])
        ],
        routing=[
            _routing(event) for event in events if event["type"] == CaseEventType.CASE_ROUTED.value
        ],
        decisions=[
            Decision(type=event["type"], at=event["at"], reason=event["reason"])
            for event in events
            if event["type"] in DECISION_TYPES
        ],
        customer_cases=list(history.get("customer_cases", [])),
        mine=history.get("assignee") == agent.name,
        promises=list(history.get("promises", [])),
        transfer_queues=list(transfer_queues or []),
        assignees=list(assignees or []),
        escalate_queues=escalate_queues,
    )


def _mail_auth_by_message(events: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Each mail's SPF/DKIM/DMARC results, from its `message.appended` event, by message key."""
    found: dict[str, dict[str, str]] = {}
    for event in events:
        payload = event.get("payload") or {}
        auth = payload.get("auth")
        if event["type"] == CaseEventType.MESSAGE_APPENDED.value and isinstance(auth, dict):
            found[str(payload.get("message_key"))] = {
                k: str(v) for k, v in auth.items() if isinstance(v, str)
            }
    return found


def _routing(event: dict[str, Any]) -> Decision:
    """A routing decision: the routes that matched and what they decided."""
    payload = event.get("payload") or {}
    decision = payload.get("decision") or {}
    # The routed case carries the matched routes too (events written before `decision` had them).
    matched = decision.get("matched") or (payload.get("case") or {}).get("matched") or []
    effects: list[tuple[str, str]] = []
    for key, label in (
        ("queue", "queue"),
        ("priority", "priority"),
        ("sla_policy", "SLA policy"),
        ("calendar", "calendar"),
        ("escalation_policy", "escalation policy"),
    ):
        if decision.get(key):
            effects.append((label, str(decision[key])))
    if decision.get("tags"):
        effects.append(("tags", ", ".join(decision["tags"])))
    due = [
        (f"{clock.replace('_', ' ')} due", str(view.get("due_at", "")))
        for clock, view in (decision.get("sla") or {}).items()
    ]
    for step in decision.get("escalations") or []:
        effects.append(("escalation", _escalation_words(step)))
    return Decision(
        type=event["type"],
        at=event["at"],
        reason=event["reason"],
        matched=list(matched),
        effects=effects,
        due=due,
    )


def _escalation_words(step: dict[str, Any]) -> str:
    words = [f"on {step.get('on', '?')}"]
    if step.get("clock"):
        words.append(f"of {str(step['clock']).replace('_', ' ')}")
    if step.get("after_seconds") is not None:
        words.append(f"after {int(step['after_seconds']) // 60} min")
    for key in ("queue", "priority"):
        if step.get(key):
            words.append(f"{key} {step[key]}")
    if step.get("notify"):
        words.append("notify " + ", ".join(step["notify"]))
    if step.get("repeat"):
        words.append(f"repeat {step['repeat']} times")
    return " ".join(words)


def now_rfc3339() -> str:
    """The server's time now, for the countdowns' clock-skew correction."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
