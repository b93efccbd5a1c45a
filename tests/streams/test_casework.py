"""Stage C: cases are built from messages, routed by the real compiled rules, idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rules import compile_sources, default_ruleset
from schemas import InboundMessage, Priority
from streams.case_state import CaseState
from streams.casework import apply_message
from streams.records import ThreadedMessage

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

RULES = """
version: 1
queues:
  general: {}
  legal: {}
  tier2: {}
routes:
  queue: general
  priority: normal
  routes:
    - name: legal-threat
      when: {text: {any: [lawyer, "legal action"]}}
      priority: urgent
      tags: [legal]
      queue: legal
    - name: repeat-contact
      when: {case.contacts: {at_least: 3}}
      priority: +1
      tags: [repeat]
      queue: tier2
"""


def threaded(
    external_id: str, text: str = "where is my order?", at: datetime = T0, **kw: Any
) -> ThreadedMessage:
    message = InboundMessage.model_validate(
        {
            "channel": kw.pop("channel", "email"),
            "external_id": external_id,
            "sender": "ana@example.com",
            "text": text,
            "sent_at": at.isoformat(),
        }
    )
    return ThreadedMessage(
        case_id="C-ABCDEFGHIJ",
        customer_id="cus_1",
        opens_case=kw.pop("opens", False),
        evidence="test",
        message=message,
        ingested_at=at,
    )


def test_first_message_opens_appends_and_routes() -> None:
    update = apply_message(None, threaded("m1", opens=True), default_ruleset())
    assert [e.type for e in update.events] == ["case.opened", "message.appended", "case.routed"]
    assert update.routed is not None
    assert (update.routed.queue, update.routed.priority) == ("general", Priority.NORMAL)
    assert update.routed.messages[-1].external_id == "m1"
    assert "queue general" in update.events[-1].reason


def test_same_input_gives_identical_events() -> None:
    once = apply_message(None, threaded("m1"), default_ruleset())
    again = apply_message(None, threaded("m1"), default_ruleset())
    assert [e.model_dump_json() for e in once.events] == [e.model_dump_json() for e in again.events]


def test_duplicate_message_changes_nothing() -> None:
    first = apply_message(None, threaded("m1"), default_ruleset())
    duplicate = apply_message(first.state, threaded("m1"), default_ruleset())
    assert not duplicate.changed
    assert duplicate.routed is None
    assert duplicate.state == first.state


def test_follow_up_without_routing_change_emits_no_second_routed_event() -> None:
    rules = default_ruleset()
    first = apply_message(None, threaded("m1"), rules)
    second = apply_message(first.state, threaded("m2", at=T0 + timedelta(hours=1)), rules)
    assert [e.type for e in second.events] == ["message.appended"]
    assert second.routed is not None and len(second.routed.messages) == 2
    assert second.state.contacts == 2


def test_third_contact_escalates_and_legal_threat_is_urgent() -> None:
    rules = compile_sources({"rules.yaml": RULES})
    state: CaseState | None = None
    for number in range(1, 4):
        update = apply_message(
            state, threaded(f"m{number}", at=T0 + timedelta(hours=number)), rules
        )
        state = update.state
    assert update.routed is not None
    assert (update.routed.queue, update.routed.priority) == ("tier2", Priority.HIGH)
    assert update.previous_queue == "general"
    assert update.events[-1].type == "case.routed"
    assert "repeat-contact" in update.events[-1].reason
    legal = apply_message(
        state, threaded("m4", "my lawyer will call you", T0 + timedelta(hours=5)), rules
    )
    assert legal.routed is not None
    assert legal.routed.priority is Priority.URGENT
    assert legal.routed.tags == ["repeat", "legal"]


def test_follow_up_never_lowers_priority_by_itself() -> None:
    rules = compile_sources({"rules.yaml": RULES})
    urgent = apply_message(None, threaded("m1", "legal action follows"), rules)
    calm = apply_message(urgent.state, threaded("m2", "thanks", T0 + timedelta(minutes=1)), rules)
    assert calm.state.priority is Priority.URGENT


def test_case_facts_count_contacts_channels_and_age() -> None:
    first = apply_message(None, threaded("m1"), default_ruleset())
    second = apply_message(
        first.state, threaded("m2", at=T0 + timedelta(hours=2), channel="sms"), default_ruleset()
    )
    facts = second.state.facts(T0 + timedelta(hours=3))
    assert facts.contacts == 2
    assert facts.channels == ("email", "sms")
    assert facts.age == timedelta(hours=3)
    # the customer has waited since the first unanswered message, not the latest one
    assert facts.unanswered_for == timedelta(hours=3)
