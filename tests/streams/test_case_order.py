"""A replay by case group decides exactly what a replay in event-time order decides.

`streams.case_order` lets a backtest feed stage C case group by case group. These tests
hold it to the plain event-time replay on histories built to break it: customers sharing
a forum topic, cases resolved and written to again after the reopen window (successors),
agent actions on successors and on cases nobody opened, and a grouping that cannot foresee
an action's case (which must fall back to event-time order).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rules import compile_sources
from schemas import AgentAction, InboundMessage
from schemas.ids import case_id_for, successor_case_id, thread_case_id
from streams import backtest, case_order
from streams.backtest import HistoryItem, in_order, replay
from streams.case_order import CaseInput
from streams.records import ThreadedMessage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
RULES = compile_sources(
    {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml") if p.name != "tests.yaml"}
)
START = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
UNTIL = START + timedelta(days=40)


def _message(number: int, customer: int, at: datetime, **extra: Any) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "channel": "email",
            "external_id": f"m-{number}",
            "sender": f"c{customer}@example.com",
            "text": "Where is my order? I was charged twice.",
            "sent_at": at.isoformat(),
            "customer": {"id": f"cust-{customer}", "tier": "standard"},
            **extra,
        }
    )


def _action(case_id: str, number: int, kind: str, at: datetime, **extra: Any) -> AgentAction:
    return AgentAction.model_validate(
        {
            "action_id": f"a-{number}",
            "case_id": case_id,
            "agent_id": "agent-1",
            "type": kind,
            "at": at.isoformat(),
            **extra,
        }
    )


def _history(seed: int) -> list[HistoryItem]:
    """Customers who write, get answers, are resolved, write again weeks later (successors),
    post in a shared forum topic, and agents who act on all of it and on unknown cases."""
    rng = random.Random(seed)
    items: list[HistoryItem] = []
    number = 0
    for customer in range(30):
        at = START + timedelta(minutes=rng.uniform(0, 600))
        first = _message(number, customer, at, thread_ref=f"order-{customer}")
        number += 1
        items.append(HistoryItem(at, message=first))
        case = case_id_for(f"cust-{customer}", first.message_key)
        plan = [("claim", 20), ("reply", 40), ("resolve", 60)]
        for step, (kind, minutes) in enumerate(plan):
            when = at + timedelta(minutes=minutes + rng.uniform(0, 10))
            text = {"text": "We are on it."} if kind == "reply" else {}
            items.append(
                HistoryItem(when, action=_action(case, number * 10 + step, kind, when, **text))
            )
        # weeks later, past the reopen window: the message goes to the successor case
        later = at + timedelta(days=9 + rng.uniform(0, 2))
        again = _message(number, customer, later, thread_ref=f"order-{customer}")
        number += 1
        items.append(HistoryItem(later, message=again))
        successor = successor_case_id(f"cust-{customer}", case)
        when = later + timedelta(minutes=15)
        items.append(HistoryItem(when, action=_action(successor, number * 10, "claim", when)))
        # an action on a case nobody opened
        items.append(
            HistoryItem(
                when, action=_action(f"C-NOBODY{customer:04d}", number * 10 + 1, "claim", when)
            )
        )
    # other customers post in one shared forum topic (the first one starts it)
    for poster in range(100, 110):
        posted = START + timedelta(hours=2, minutes=poster - 100 + rng.uniform(0, 0.5))
        post = _message(
            number,
            poster,
            posted,
            channel="community",
            thread_ref="topic-1",
            metadata={"kind": "topic"} if poster == 100 else {},
        )
        number += 1
        items.append(HistoryItem(posted, message=post))
    topic = thread_case_id("community", "topic-1")
    when = START + timedelta(hours=3)
    items.append(HistoryItem(when, action=_action(topic, 999_999, "claim", when)))
    return in_order(items)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_by_case_decides_what_event_time_order_decides(seed: int) -> None:
    items = _history(seed)
    grouped = replay(items, RULES, UNTIL, by_case=True)
    in_time = replay(items, RULES, UNTIL, by_case=False)
    assert grouped.outcomes == in_time.outcomes
    assert grouped.counts == in_time.counts
    assert in_time.counts.unknown_case_actions == 30  # the actions on cases nobody opened
    assert any(o.clock_events for o in in_time.outcomes.values())
    cases = set(in_time.outcomes)
    successors = {successor_case_id(f"cust-{c}", case) for c in range(30) for case in cases}
    assert len(successors & cases) == 30  # every customer's later message opened a successor
    assert thread_case_id("community", "topic-1") in cases  # the shared topic's one case


def test_an_action_the_grouping_did_not_foresee_falls_back_to_event_time_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = _history(4)
    expected = replay(items, RULES, UNTIL, by_case=False)
    monkeypatch.setattr(case_order, "SUCCESSOR_DEPTH", 0)  # successors' actions become strays
    attempts: list[bool] = []
    real = backtest._replay

    def counted(*args: Any) -> Any:
        attempts.append(args[-1])
        return real(*args)

    monkeypatch.setattr(backtest, "_replay", counted)
    found = replay(items, RULES, UNTIL, by_case=True)
    assert attempts == [True, False]  # grouped, found an unforeseen case, then in time order
    assert found.outcomes == expected.outcomes
    assert found.counts == expected.counts


def _threaded(customer: str, case_id: str) -> ThreadedMessage:
    message = _message(1, 1, START)
    return ThreadedMessage(
        case_id=case_id,
        customer_id=customer,
        opens_case=True,
        evidence="test",
        message=message,
        ingested_at=START,
        successor_case_id=successor_case_id(customer, case_id),
    )


def test_groups_join_customers_through_a_shared_case_and_keep_time_order() -> None:
    topic = thread_case_id("community", "t")
    inputs = [
        CaseInput(0, threaded=_threaded("ana", "C-ANA0000001")),
        CaseInput(1, threaded=_threaded("bob", "C-BOB0000001")),
        CaseInput(2, threaded=_threaded("ana", topic)),
        CaseInput(3, action=_action("C-BOB0000001", 1, "claim", START)),
        CaseInput(4, threaded=_threaded("cid", topic)),
        CaseInput(5, action=_action("C-UNKNOWN001", 2, "claim", START)),
        CaseInput(6, action=_action(successor_case_id("ana", "C-ANA0000001"), 3, "claim", START)),
        CaseInput(7, action=_action("C-ANA0000001", 4, "claim", START)),
    ]
    order = case_order.case_order(inputs)
    assert [[item.position for item in group] for group in order.groups] == [
        [0, 2, 4, 6, 7],
        [1, 3],
    ]
    assert [item.position for item in order.strays] == [5]
