"""Every kind of condition, on a one-route rule set: does route `r` match the message?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import rules
from tests.rules.helpers import decide, ruleset

CALENDAR = """
calendars:
  office: {timezone: Europe/Berlin, hours: {mon-fri: "09:00-17:00"}}
"""


def matches(when: str, case: rules.CaseFacts | None = None, **fields: Any) -> bool:
    rs = ruleset(
        f"routes:\n  queue: general\n  routes:\n    - {{name: r, when: {when}, queue: q1}}\n",
        CALENDAR,
    )
    return decide(rs, case, **fields).matched == ("r",)


CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("{channel: email}", {}, True),
    ("{channel: [sms, chat]}", {}, False),
    ("{channel: {in: [sms, email]}}", {}, True),
    ("{message.channel: email}", {}, True),
    ("{customer.tier: vip}", {"customer": {"tier": "VIP"}}, True),
    ("{customer.tier: vip}", {}, False),
    ("{customer.plan: gold}", {"customer": {"plan": "Gold"}}, True),
    ("{customer.verified: email}", {"customer": {"verified": ["email"]}}, True),
    ("{language: null}", {}, True),
    ("{language: [de, fr]}", {"language": "de"}, True),
    ("{metadata.order.country: de}", {"metadata": {"order": {"country": "DE"}}}, True),
    ("{metadata.labels: bug}", {"metadata": {"labels": ["bug", "ui"]}}, True),
    ("{metadata.amount: {above: 100}}", {"metadata": {"amount": 250}}, True),
    ("{metadata.amount: {above: 100}}", {"metadata": {"amount": "250"}}, False),
    ("{metadata.vip: true}", {"metadata": {"vip": True}}, True),
    ("{subject: {exists: true}}", {"subject": "Hi"}, True),
    ("{subject: {exists: false}}", {}, True),
    ("{text: {any: [lawyer, attorney]}}", {"text": "My LAWYER will call"}, True),
    ("{text: {any: [law]}}", {"text": "my lawyer"}, False),
    ("{text: {any: ['legal action']}}", {"text": "I take Legal  Action now"}, True),
    ("{text: {any: ['legal action']}}", {"text": "action legal"}, False),
    ("{text: {all: [refund, invoice]}}", {"text": "invoice, then refund"}, True),
    ("{text: {all: [refund, invoice]}}", {"text": "refund please"}, False),
    ("{text: {none: [thanks]}}", {"text": "Thanks!"}, False),
    ("{text: {any: [straße]}}", {"text": "Meine STRASSE ist falsch"}, True),
    ("{text: {any: [café]}}", {"text": "le cafe\u0301 est froid"}, True),
    ("{text: {any: [über]}}", {"text": "Überweisung über PayPal"}, True),
    ("{text: {any: [über]}}", {"text": "Überweisung"}, False),
    ("{subject: {any: [urgent]}}", {"subject": "URGENT: help"}, True),
    ("{text: {regex: 'order #\\d{5}'}}", {"text": "about order #12345"}, True),
    ("{text: {regex: '^hello$'}}", {"text": "Hello"}, False),
    ("{text: {regex: '(?i)^hello$'}}", {"text": "Hello"}, True),
    (
        "{sentiment: {below: -0.4}}",
        {"text": "This is terrible, I hate it, worst service ever"},
        True,
    ),
    ("{message.sentiment: {above: 0.5}}", {"text": "Thank you so much, wonderful help!"}, True),
    ("{sentiment: {below: -0.4}}", {"text": "Where is my parcel?"}, False),
    ("{attachments: {at_least: 1}}", {"attachments": [{"filename": "a.png"}]}, True),
    ("{during: office}", {"sent_at": datetime(2027, 1, 4, 9, 0, tzinfo=UTC)}, True),
    ("{outside: office}", {"sent_at": datetime(2027, 1, 4, 17, 0, tzinfo=UTC)}, True),
    ("{outside: office}", {"sent_at": datetime(2027, 1, 9, 12, 0, tzinfo=UTC)}, True),
    ("{all_of: [{channel: email}, {text: {any: [hello]}}]}", {}, True),
    ("{any_of: [{channel: sms}, {text: {any: [nope]}}]}", {}, False),
    ("{not: {channel: sms}}", {}, True),
    ("{channel: email, not: {text: {any: [hello]}}}", {}, False),
]


@pytest.mark.parametrize(
    ("when", "fields", "expected"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES]
)
def test_message_condition(when: str, fields: dict[str, Any], expected: bool) -> None:
    assert matches(when, **fields) is expected


CASE_CASES: list[tuple[str, rules.CaseFacts | None, bool]] = [
    ("{case.contacts: {at_least: 3}}", rules.CaseFacts(contacts=3), True),
    ("{case.contacts: {at_least: 3}}", None, False),
    ("{case.contacts: 1}", None, True),
    ("{case.channels: email}", None, True),
    ("{case.channels: [sms, twitter]}", rules.CaseFacts(channels=("email", "twitter")), True),
    ("{case.channels: {at_least: 2}}", rules.CaseFacts(channels=("email", "twitter")), True),
    ("{case.age: {above: 1d}}", rules.CaseFacts(age=timedelta(hours=25)), True),
    ("{case.age: {above: 1d}}", rules.CaseFacts(age=timedelta(hours=23)), False),
    (
        "{case.unanswered_for: {at_least: 4h}}",
        rules.CaseFacts(unanswered_for=timedelta(hours=4)),
        True,
    ),
    ("{case.unanswered_for: {below: 30m}}", None, True),
    ("{case.reopened: true}", rules.CaseFacts(reopened=2), True),
    ("{case.reopened: false}", None, True),
    ("{case.reopened: {at_least: 2}}", rules.CaseFacts(reopened=1), False),
    ("{case.status: [open, pending]}", rules.CaseFacts(status="open"), True),
    ("{case.status: new}", None, True),
    ("{case.agent_replies: 0}", None, True),
]


@pytest.mark.parametrize(
    ("when", "case", "expected"), CASE_CASES, ids=[f"{c[0]}-{c[2]}" for c in CASE_CASES]
)
def test_case_condition(when: str, case: rules.CaseFacts | None, expected: bool) -> None:
    assert matches(when, case) is expected


def test_sentiment_is_computed_only_when_a_rule_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    from rules import _message_facts

    calls: list[str] = []
    original = _message_facts.sentiment_of

    def counting(text: str) -> float:
        calls.append(text)
        return original(text)

    monkeypatch.setattr(_message_facts, "sentiment_of", counting)
    assert not matches("{channel: sms, sentiment: {below: 0}}")
    assert calls == []
    rs = ruleset(
        "routes:\n  queue: general\n  routes:\n"
        "    - {name: a, when: {sentiment: {below: -0.9}}}\n"
        "    - {name: b, when: {sentiment: {above: 0.9}}}\n"
    )
    decide(rs, text="fine")
    assert len(calls) == 2  # once for evaluate, once for explain


def test_explain_names_the_deciding_condition() -> None:
    rs = ruleset(
        "routes:\n  queue: general\n  routes:\n"
        "    - {name: social, when: {channel: [twitter, facebook], text: {any: [refund]}}}\n"
        "    - {name: refunds, when: {text: {any: [refund]}}, queue: q1}\n"
        "    - {name: never-tried, queue: q2}\n"
    )
    from tests.rules.helpers import message

    msg = message(text="refund now")
    explanation = rs.explain(msg, None, msg.sent_at)
    assert [(t.name, t.matched) for t in explanation.trials] == [
        ("social", False),
        ("refunds", True),
        ("never-tried", None),
    ]
    assert explanation.trials[0].reason == "channel in [facebook, twitter] (was 'email')"
    assert "text has any of [refund]" in explanation.trials[1].reason
    assert "'refunds' matched first" in explanation.trials[2].reason
