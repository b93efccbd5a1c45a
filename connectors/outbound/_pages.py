"""What the reply service reads from `cases.events` for on-call paging: the page orders.

- `case.escalated` whose `escalation.page` names targets: trigger a page at each target
  (one order per SMS number, so a retry never texts the numbers that already got it);
- `case.acknowledged_by_agent`: acknowledge each listed page at the providers that keep
  incidents (PagerDuty, Opsgenie) — the others have nothing to acknowledge;
- `case.pages_resolved` (a claim or a resolution): resolve (PagerDuty) or close (Opsgenie).

Every order has a `ledger_key`, stable per event, page, target and action: the delivery
ledger holds its outcome, so no order is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.outbound._model import UnreadableEventError
from schemas import CaseEvent, CaseEventType

INCIDENT_PROVIDERS = frozenset({"pagerduty", "opsgenie"})
"""Providers that keep an incident per dedup key / alias, so it can be acknowledged and closed."""

MAX_PAGE_TARGETS = 50
"""Targets one event may ask for (a bound: a record never makes the service loop for long)."""


@dataclass(frozen=True)
class PageOrder:
    """One thing to do at one provider for one target: trigger, acknowledge or resolve."""

    case_id: str
    event_id: str
    key: str
    """The page run's dedup key (PagerDuty) and alias (Opsgenie)."""
    action: str
    target: str
    via: str
    settings: dict[str, Any] = field(default_factory=dict)
    recipient: str | None = None
    """The one phone number of an SMS order."""
    number: int = 1
    level: int = 0
    reason: str = ""
    by: str | None = None
    at: datetime | None = None
    queue: str | None = None
    priority: str | None = None

    @property
    def ledger_key(self) -> str:
        """Stable per event, page, target (and number) and action."""
        who = f"{self.target}:{self.recipient}" if self.recipient else self.target
        return f"page:{self.event_id}:{who}:{self.action}"


def page_orders_in(event: CaseEvent) -> list[PageOrder]:
    """The page orders an event carries (none for most events).

    Raises UnreadableEventError for a paging event whose payload is not what Escalator writes.
    """
    kind = event.type
    if kind == CaseEventType.CASE_ESCALATED.value:
        return _triggers(event)
    if kind == CaseEventType.CASE_ACKNOWLEDGED_BY_AGENT.value:
        return _follow_ups(event, "acknowledge", event.payload.get("agent"))
    if kind == CaseEventType.CASE_PAGES_RESOLVED.value:
        return _follow_ups(event, "resolve", event.payload.get("by"))
    return []


def _triggers(event: CaseEvent) -> list[PageOrder]:
    escalation = event.payload.get("escalation")
    page = escalation.get("page") if isinstance(escalation, dict) else None
    if page is None:
        return []
    if not isinstance(page, dict) or not isinstance(page.get("run"), str):
        raise UnreadableEventError(f"case.escalated page is not a page: {page!r:.200}")
    key = f"{event.case_id}/{page['run']}"[:255]
    orders = []
    for target in _targets(page.get("targets")):
        common: dict[str, Any] = {
            "case_id": event.case_id,
            "event_id": event.event_id,
            "key": key,
            "action": "trigger",
            "target": target["name"],
            "via": target["via"],
            "settings": target["settings"],
            "number": _int(page.get("number"), 1),
            "level": _int(page.get("level"), 0),
            "reason": event.reason,
            "at": event.at,
            "queue": _text(event.payload.get("queue")),
            "priority": _text(event.payload.get("priority")),
        }
        if target["via"] == "sms":
            numbers = target["settings"].get("to") or []
            orders += [PageOrder(**common, recipient=str(number)) for number in numbers[:20]]
        else:
            orders.append(PageOrder(**common))
    return orders[:MAX_PAGE_TARGETS]


def _follow_ups(event: CaseEvent, action: str, by: object) -> list[PageOrder]:
    pages = event.payload.get("pages") or []
    if not isinstance(pages, list):
        raise UnreadableEventError(f"{event.type} pages is not a list: {pages!r:.200}")
    orders = []
    for page in pages[:MAX_PAGE_TARGETS]:
        if not isinstance(page, dict) or not isinstance(page.get("key"), str):
            raise UnreadableEventError(f"{event.type} page is not a page: {page!r:.200}")
        for target in _targets(page.get("targets")):
            if target["via"] not in INCIDENT_PROVIDERS:
                continue
            orders.append(
                PageOrder(
                    case_id=event.case_id,
                    event_id=event.event_id,
                    key=page["key"],
                    action=action,
                    target=target["name"],
                    via=target["via"],
                    settings=target["settings"],
                    reason=event.reason,
                    by=_text(by),
                    at=event.at,
                )
            )
    return orders[:MAX_PAGE_TARGETS]


def _targets(raw: object) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise UnreadableEventError(f"page targets are not a list: {raw!r:.200}")
    found = []
    for target in raw[:MAX_PAGE_TARGETS]:
        if not (
            isinstance(target, dict)
            and isinstance(target.get("name"), str)
            and isinstance(target.get("via"), str)
        ):
            raise UnreadableEventError(f"page target is not a target: {target!r:.200}")
        settings = target.get("settings")
        found.append(
            {
                "name": target["name"],
                "via": target["via"],
                "settings": settings if isinstance(settings, dict) else {},
            }
        )
    return found


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _text(value: object) -> str | None:
    return None if value is None else str(value)
