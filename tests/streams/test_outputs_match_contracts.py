"""Everything stage C writes matches the public contracts, whatever path built it.

Internal records may take faster routes than the contracts (issue 13 allows it, with this
test). A varied history (every channel, VIPs,
follow-ups, every kind of agent action, deadlines firing, escalations, pages) goes
through the worker's own case logic, and every event, every typed payload and every
queue record it wrote must validate against the public contract and serialize without a
single warning.
"""

from __future__ import annotations

import random
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rules import compile_sources
from schemas import (
    AgentAction,
    Case,
    CaseEvent,
    CaseOpenedPayload,
    CaseRoutedPayload,
    InboundMessage,
    MessageAppendedPayload,
)
from streams.case_events import case_record
from streams.case_state import CaseState
from streams.simulation import SimulatedWorker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
START = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
CHANNELS = ["email", "chat", "webform", "sms", "twitter", "facebook", "forum"]
TEXTS = [
    "Where is my order?",
    "I was charged twice, please refund",
    "The app shows error 500 when I login",
    "I will talk to my lawyer about this",
    "Someone logged in to my account, I think I was hacked",
    "Your service is terrible, I am furious",
]
TYPED_PAYLOADS: dict[str, type[Any]] = {
    "case.opened": CaseOpenedPayload,
    "case.routed": CaseRoutedPayload,
    "case.updated": CaseRoutedPayload,
    "message.appended": MessageAppendedPayload,
}


def _history() -> list[tuple[datetime, InboundMessage | AgentAction]]:
    rng = random.Random(7)
    items: list[tuple[datetime, InboundMessage | AgentAction]] = []
    for number in range(120):
        at = START + timedelta(minutes=rng.uniform(0, 3 * 24 * 60))
        channel = rng.choice(CHANNELS)
        message = InboundMessage.model_validate(
            {
                "channel": channel,
                "external_id": f"m-{number}",
                "sender": f"c{number % 40}@example.com",
                "text": rng.choice(TEXTS),
                "sent_at": at.isoformat(),
                "customer": {"id": f"cust-{number % 40}", "tier": rng.choice(["standard", "vip"])},
            }
        )
        items.append((at, message))
    return sorted(items, key=lambda item: item[0])


def _actions_for(case_id: str, at: datetime, number: int) -> list[AgentAction]:
    kinds: list[dict[str, Any]] = [
        {"type": "claim"},
        {"type": "note", "text": "looking"},
        {"type": "reply", "text": "Thanks, we are on it."},
        {"type": "status", "status": "waiting_on_customer"},
        {"type": "escalate", "priority": "urgent", "reason": "customer is furious"},
        {"type": "transfer", "queue": "tier2"},
        {"type": "acknowledge"},
        {"type": "release"},
        {"type": "resolve"},
        {"type": "reopen"},
    ]
    chosen = kinds[: 3 + number % len(kinds)]
    return [
        AgentAction.model_validate(
            {
                "action_id": f"{case_id}-{index}",
                "case_id": case_id,
                "agent_id": "agent-1",
                "at": (at + timedelta(minutes=5 * (index + 1))).isoformat(),
                **kind,
            }
        )
        for index, kind in enumerate(chosen)
    ]


def test_every_output_of_a_varied_history_validates_against_its_contract() -> None:
    ruleset = compile_sources(
        {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml") if p.name != "tests.yaml"}
    )
    written: list[CaseEvent] = []
    records: list[Case] = []

    def sink(state: CaseState, events: list[CaseEvent]) -> None:
        written.extend(events)
        if state.queue is not None and state.priority is not None:
            records.append(case_record(state))

    worker = SimulatedWorker(ruleset, sink)
    acted: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a serializer meeting an unexpected type warns
        for number, (at, message) in enumerate(_history()):
            worker.message(message, at)
            for case_id in sorted(set(worker.cases) - acted):
                acted.add(case_id)
                for action in _actions_for(case_id, at, number):
                    worker.action(action)
        worker.finish(START + timedelta(days=10))
        kinds = {event.type for event in written}
        for event in written:
            again = CaseEvent.model_validate_json(event.model_dump_json())
            assert again == CaseEvent.model_validate(event.model_dump()), event.type
            typed = TYPED_PAYLOADS.get(event.type)
            if typed is not None:
                typed.model_validate(event.payload)
        for record in records:
            Case.model_validate_json(record.model_dump_json())
    # the history reached what it is meant to cover
    assert {"case.opened", "case.routed", "message.appended", "case.updated"} <= kinds
    assert {"sla.started", "sla.warning", "sla.breached", "sla.met", "case.escalated"} <= kinds
    assert {"case.claimed", "case.resolved", "case.reopened", "case.status_changed"} <= kinds
    assert len(records) > 100


def test_a_constructed_event_with_a_wrong_type_is_caught_here() -> None:
    """The check above can fail: a value of the wrong type is refused by the contract."""
    bad = CaseEvent.model_construct(
        event_id="e" * 16, case_id="C-ABCDEFGH", type="case.updated", at="not a time", reason=""
    )
    with warnings.catch_warnings(), pytest.raises(Exception):  # noqa: B017 - error or warning
        warnings.simplefilter("error")
        CaseEvent.model_validate(bad.model_dump())
