"""Stage C acknowledges opened and reopened cases with the real promise, loop-safely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rules import compile_sources
from schemas import AcknowledgementPayload, AgentAction, CaseStatus, InboundMessage
from schemas.links import EscalationLinks
from streams.acknowledge import Acknowledger
from streams.actions import apply_action
from streams.casework import CaseUpdate, apply_message, fire_clocks
from streams.records import ThreadedMessage

# Monday 4 January 2027, 08:00 UTC = 09:00 in Berlin
MONDAY = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)

RULES = """
version: 1
calendars:
  eu:
    timezone: Europe/Berlin
    hours: {mon-fri: ["09:00-17:00"]}
sla:
  std:
    calendar: eu
    targets:
      urgent: {first_response: 1h}
      high: {first_response: 3h30m}
      normal: {first_response: 4h, next_response: 2h}
escalations:
  std:
    - {on: warning, clock: first_response, priority: +1}
queues:
  general: {}
acknowledgements:
  default:
    subject: "Received [#{{ case.reference }}]"
    text: "By {{ promise.first_response }} ({{ sla.first_response.due_at }}) {{ links.escalate }}"
    update:
      subject: "Sooner [#{{ case.reference }}]"
      text: "Now by {{ promise.first_response }}"
  public:
    subject: "Hi"
    text: "By {{ promise.first_response }}"
    public: true
routes:
  queue: general
  priority: normal
  sla: std
  escalation: std
  routes:
    - name: customer-escalated
      when: {case.customer_escalations: {at_least: 1}}
      priority: +1
    - name: forum-public
      when: {channel: community, metadata.board: public-ok}
      acknowledgement: public
"""

LINKS = EscalationLinks(secret="s3cret", base_url="https://help.example.com")


def ruleset() -> Any:
    return compile_sources({"rules.yaml": RULES})


def threaded(
    external_id: str, at: datetime = MONDAY, case_id: str = "C-ABCDEFGHIJ", **fields: Any
) -> ThreadedMessage:
    data: dict[str, Any] = {
        "channel": "email",
        "external_id": external_id,
        "sender": "ana@example.com",
        "text": "where is my refund?",
        "sent_at": at.isoformat(),
        "subject": "Refund",
        "thread_ref": "<root@mail.example.com>",
    }
    data.update(fields)
    return ThreadedMessage(
        case_id=case_id,
        customer_id="cus_1",
        opens_case=True,
        evidence="test",
        message=InboundMessage.model_validate(data),
        ingested_at=at,
    )


def acknowledgements(update: CaseUpdate) -> list[AcknowledgementPayload]:
    return [
        AcknowledgementPayload.model_validate(event.payload)
        for event in update.events
        if event.type == "case.acknowledged"
    ]


def test_a_new_case_is_acknowledged_with_its_first_response_due_time() -> None:
    update = apply_message(None, threaded("<m1@mail>"), ruleset(), acknowledger=Acknowledger(LINKS))
    [ack] = acknowledgements(update)
    assert ack.kind == "opened" and ack.template == "default"
    assert (ack.channel, ack.recipient) == ("email", "ana@example.com")
    assert ack.in_reply_to == "<m1@mail>" and ack.thread_ref == "<root@mail.example.com>"
    assert ack.subject == "Received [#C-ABCDEFGHIJ]"
    # 4 open hours from 09:00 Berlin is 13:00 CET, 12:00 UTC
    assert ack.promise.due_at == "2027-01-04T12:00:00Z"
    assert ack.promise.local == "Monday 4 January, 13:00 CET"
    assert ack.text.startswith("By Monday 4 January, 13:00 CET (2027-01-04T12:00:00Z) ")
    link = ack.text.rsplit(" ", 1)[1]
    assert link.startswith("https://help.example.com/v1/escalate/")
    claims = LINKS.check(link.rsplit("/", 1)[1], MONDAY)
    assert (claims.case_id, claims.customer_id) == ("C-ABCDEFGHIJ", "cus_1")
    assert ack.message_key.startswith("ack:")
    assert update.state.acknowledged_due == datetime(2027, 1, 4, 12, 0, tzinfo=UTC)


def test_the_customers_time_zone_is_used_where_known() -> None:
    message = threaded("<m1@mail>", customer={"timezone": "America/New_York"})
    [ack] = acknowledgements(apply_message(None, message, ruleset()))
    assert ack.promise.local == "Monday 4 January, 07:00 EST"
    assert ack.promise.timezone == "America/New_York"


def test_replaying_the_message_writes_the_same_acknowledgement() -> None:
    once = apply_message(None, threaded("<m1@mail>"), ruleset(), acknowledger=Acknowledger(LINKS))
    again = apply_message(None, threaded("<m1@mail>"), ruleset(), acknowledger=Acknowledger(LINKS))
    assert [e.model_dump_json() for e in once.events] == [e.model_dump_json() for e in again.events]


def test_a_follow_up_is_not_acknowledged_but_a_reopen_is() -> None:
    rules = ruleset()
    opened = apply_message(None, threaded("<m1@mail>"), rules)
    follow = apply_message(
        opened.state, threaded("<m2@mail>", MONDAY + timedelta(minutes=5)), rules
    )
    assert acknowledgements(follow) == []
    reply = AgentAction.model_validate(
        {
            "action_id": "a1",
            "case_id": "C-ABCDEFGHIJ",
            "type": "reply",
            "agent_id": "bob",
            "text": "done",
            "at": (MONDAY + timedelta(minutes=10)).isoformat(),
        }
    )
    replied = apply_action(follow.state, reply, rules)
    assert replied is not None
    resolve = AgentAction.model_validate(
        {**reply.model_dump(mode="json"), "action_id": "a2", "type": "resolve", "text": None}
    )
    resolved = apply_action(replied.state, resolve, rules)
    assert resolved is not None and resolved.state.status is CaseStatus.RESOLVED
    back = apply_message(resolved.state, threaded("<m3@mail>", MONDAY + timedelta(hours=1)), rules)
    [ack] = acknowledgements(back)
    assert ack.kind == "reopened"
    assert ack.in_reply_to == "<m3@mail>"
    # an agent replied before: the customer now waits on next_response (2 open hours)
    assert ack.promise.clock == "next_response"
    assert ack.promise.due_at == "2027-01-04T11:00:00Z"


@pytest.mark.parametrize(
    "fields",
    [
        {"metadata": {"auto_reply": True, "auto_reply_reason": "auto-submitted: auto-replied"}},
        {"metadata": {"tags": ["auto_reply"]}},
        {"metadata": {"mailing_list": True}},
        {"sender": "no-reply@shop.example.com"},
        {"sender": "noreply+bounce@shop.example.com"},
        {"sender": "MAILER-DAEMON@mx.example.com"},
        {"channel": "twitter", "sender": "@ana", "metadata": {"kind": "tweet"}},
        {"channel": "community", "sender": "ana", "thread_ref": "42"},
        {"channel": "facebook", "sender": "ana.fb", "metadata": {"kind": "feed_comment"}},
        {"channel": "twitter", "sender": "@ana"},  # a social message that does not say: public
    ],
)
def test_no_acknowledgement_answers_automatic_bulk_no_reply_or_public_messages(
    fields: dict[str, Any],
) -> None:
    update = apply_message(None, threaded("m1", **fields), ruleset())
    assert update.events, "the message still opens its case"
    assert acknowledgements(update) == []


def test_a_public_post_is_acknowledged_where_the_rules_say_so() -> None:
    message = threaded(
        "m1", channel="community", sender="ana", thread_ref="42", metadata={"board": "public-ok"}
    )
    [ack] = acknowledgements(apply_message(None, message, ruleset()))
    assert ack.template == "public"


def test_a_direct_message_on_a_social_channel_is_acknowledged() -> None:
    message = threaded(
        "dm:1", channel="twitter", sender="@ana", metadata={"kind": "direct_message"}
    )
    assert len(acknowledgements(apply_message(None, message, ruleset()))) == 1


def test_no_sla_means_no_promise_and_no_acknowledgement() -> None:
    rules = compile_sources({"rules.yaml": RULES.replace("  sla: std\n", "")})
    assert acknowledgements(apply_message(None, threaded("m1"), rules)) == []


def test_an_escalation_that_moves_the_due_time_earlier_sends_the_update() -> None:
    rules = ruleset()
    opened = apply_message(None, threaded("m1"), rules)
    # warning at 75% of 4h (12:00 Berlin): priority +1 → high, 3h30m target → due 12:30 Berlin
    fired = fire_clocks(opened.state, rules, datetime(2027, 1, 4, 11, 0, tzinfo=UTC))
    [update] = acknowledgements(fired)
    assert update.kind == "update"
    assert update.subject == "Sooner [#C-ABCDEFGHIJ]"
    assert update.previous_due_at == "2027-01-04T12:00:00Z"
    assert update.promise.due_at == "2027-01-04T11:30:00Z"
    assert update.text == "Now by Monday 4 January, 12:30 CET"
    assert (update.recipient, update.in_reply_to) == ("ana@example.com", "m1")
    # firing the same deadline again tells nothing twice
    again = fire_clocks(fired.state, rules, datetime(2027, 1, 4, 11, 0, tzinfo=UTC))
    assert acknowledgements(again) == []


def test_a_customer_escalation_is_counted_recorded_and_raises_the_priority() -> None:
    rules = ruleset()
    opened = apply_message(None, threaded("m1"), rules)
    request = threaded(
        "escalate:n1",
        MONDAY + timedelta(minutes=30),
        channel="webform",
        sender="escalate:C-ABCDEFGHIJ",
        text="Still not solved: nobody called me back",
        metadata={"escalation_request": True, "escalation_link": "n1"},
    )
    update = apply_message(opened.state, request, rules)
    types = [event.type for event in update.events]
    assert "case.customer_escalated" in types
    escalated = next(e for e in update.events if e.type == "case.customer_escalated")
    assert escalated.payload["escalations"] == 1
    assert escalated.payload["text"] == "Still not solved: nobody called me back"
    assert update.state.customer_escalations == 1
    assert update.routed is not None and update.routed.priority.value == "high"
    assert "escalation_request" in update.routed.messages[-1].tags
    assert "customer-escalated" in update.routed.matched
    # the sooner promise goes where the acknowledgement went, not to the page's "sender"
    [told] = acknowledgements(update)
    assert told.kind == "update"
    assert (told.channel, told.recipient) == ("email", "ana@example.com")
    assert told.promise.due_at == "2027-01-04T11:30:00Z"


def test_an_escalation_request_flag_without_trust_is_the_ingress_s_business() -> None:
    # stage C believes the flag: the ingress refuses it from callers not trusted to set it
    # (tests/security/test_ingress_auth.py); here a request only counts once per message
    rules = ruleset()
    opened = apply_message(None, threaded("m1"), rules)
    request = threaded("escalate:n1", channel="webform", metadata={"escalation_request": True})
    once = apply_message(opened.state, request, rules)
    twice = apply_message(once.state, request, rules)
    assert not twice.changed and twice.state.customer_escalations == 1


def test_an_agent_escalation_to_a_higher_priority_tells_the_customer_the_sooner_promise() -> None:
    rules = ruleset()
    opened = apply_message(None, threaded("m1"), rules)
    escalate = AgentAction.model_validate(
        {
            "action_id": "e1",
            "case_id": "C-ABCDEFGHIJ",
            "type": "escalate",
            "agent_id": "bob",
            "priority": "urgent",
            "reason": "the customer is losing money",
            "at": (MONDAY + timedelta(minutes=10)).isoformat(),
        }
    )
    escalated = apply_action(opened.state, escalate, rules)
    assert escalated is not None
    [told] = acknowledgements(escalated)
    assert told.kind == "update"
    # urgent: 1 open hour from 09:00 Berlin
    assert told.promise.due_at == "2027-01-04T09:00:00Z"
    assert told.previous_due_at == "2027-01-04T12:00:00Z"
