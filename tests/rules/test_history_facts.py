"""`case.channel_switches` and the customer's history (`history.*`) in conditions and CASE.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from escalator.commands.rules import app
from rules import CaseFacts, CustomerHistory, RuleSetError
from rules._case_input import case_facts_from
from tests.rules.helpers import MONDAY_9, decide, message, ruleset

ROUTES = """
routes:
  queue: general
  routes:
    - name: third-contact-across-channels
      when:
        case.contacts: {at_least: 3}
        case.channel_switches: {at_least: 1}
      queue: q2
      tags: [repeat]
    - name: returning-customer
      when: {history.recent_cases: {at_least: 1}}
      queue: q3
    - name: long-time-customer
      when: {history.cases: {at_least: 5}}
      queue: q4
"""


def test_third_contact_across_channels_routes_to_tier2() -> None:
    rs = ruleset(ROUTES)
    switched = CaseFacts(contacts=3, channels=("email", "twitter"), channel_switches=1)
    decision = decide(rs, switched, channel="twitter")
    assert (decision.queue, decision.matched) == ("q2", ("third-contact-across-channels",))


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        (CaseFacts(contacts=3, channels=("email",), channel_switches=0), "one channel only"),
        (CaseFacts(contacts=2, channels=("email", "sms"), channel_switches=1), "second contact"),
        (None, "a fresh case: one contact, no switch"),
    ],
)
def test_no_tier2_without_a_third_contact_and_a_switch(facts: CaseFacts | None, why: str) -> None:
    assert decide(ruleset(ROUTES), facts).queue == "general", why


def test_history_counts_route_returning_and_long_time_customers() -> None:
    rs = ruleset(ROUTES)
    recent = CaseFacts(history=CustomerHistory(cases=1, recent_cases=1))
    assert decide(rs, recent).queue == "q3"
    old_only = CaseFacts(history=CustomerHistory(cases=2, recent_cases=0))
    assert decide(rs, old_only).queue == "general"
    many = CaseFacts(history=CustomerHistory(cases=7, recent_cases=0))
    assert decide(rs, many).matched == ("long-time-customer",)
    assert decide(rs, None).queue == "general"  # no history known: a first-time customer


def test_history_is_not_read_from_customer_attributes_a_connector_sends() -> None:
    rs = ruleset(ROUTES)
    decision = decide(rs, None, customer={"id": "c1", "cases": 9, "recent_cases": 9})
    assert decision.queue == "general"


def test_explain_shows_the_facts_it_compared() -> None:
    rs = ruleset(ROUTES)
    msg = message()
    switched = CaseFacts(contacts=3, channel_switches=2)
    assert "case.channel_switches at least 1 (was 2)" in "\n".join(
        rs.explain(msg, switched, MONDAY_9).lines()
    )
    returning = CaseFacts(history=CustomerHistory(cases=2, recent_cases=1))
    assert "history.recent_cases at least 1 (was 1)" in "\n".join(
        rs.explain(msg, returning, MONDAY_9).lines()
    )


@pytest.mark.parametrize(
    ("field", "suggestion"),
    [
        ("history.case", "history.cases"),
        ("history.recent", "history.recent_cases"),
        ("case.channel_switch", "case.channel_switches"),
    ],
)
def test_misspelt_fields_are_errors_with_a_suggestion(field: str, suggestion: str) -> None:
    routes = "routes:\n  queue: general\n  routes:\n    - name: r\n      queue: q1\n"
    with pytest.raises(RuleSetError) as error:
        ruleset(routes + f"      when: {{{field}: 1}}\n")
    assert [str(p) for p in error.value.errors] == [
        f"test.yaml:7:14: unknown field {field!r} (did you mean {suggestion!r}?); fields are "
        "channel, text, subject, language, sender, attachments, sentiment, customer.*, case.*, "
        "history.*, metadata.*"
    ]


def test_case_json_carries_switches_and_history() -> None:
    facts = case_facts_from(
        {"contacts": 3, "channel_switches": 2, "history": {"cases": 4, "recent_cases": 1}}, "sms"
    )
    assert facts.channel_switches == 2
    assert facts.history == CustomerHistory(cases=4, recent_cases=1)
    fresh = case_facts_from({}, "sms")
    assert (fresh.channel_switches, fresh.history) == (0, CustomerHistory())


@pytest.mark.parametrize(
    "bad",
    [
        {"channel_switches": -1},
        {"history": {"cases": -1}},
        {"history": {"cases": 1, "recent_cases": 2}},
        {"history": {"tickets": 1}},
    ],
)
def test_case_json_mistakes_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        case_facts_from(bad, "sms")


def test_rules_explain_cli_takes_them_from_case_json(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    queues = "queues: {general: {}, q2: {}, q3: {}, q4: {}}\n"
    rules_file.write_text("version: 1\n" + queues + ROUTES)
    message = tmp_path / "msg.json"
    message.write_text(
        json.dumps(
            {
                "channel": "sms",
                "external_id": "s1",
                "sender": "+4915112345678",
                "text": "still broken",
                "sent_at": "2027-01-04T09:00:00Z",
            }
        )
    )
    runner = CliRunner()
    outcomes = {}
    for name, case in {
        "switched": {"contacts": 3, "channels": ["email", "sms"], "channel_switches": 1},
        "returning": {"history": {"cases": 1, "recent_cases": 1}},
        "fresh": {},
    }.items():
        case_file = tmp_path / f"{name}.json"
        case_file.write_text(json.dumps(case))
        args = ["explain", str(rules_file), "--message", str(message), "--case", str(case_file)]
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        outcomes[name] = json.loads(result.output)["queue"]
    assert outcomes == {"switched": "q2", "returning": "q3", "fresh": "general"}
