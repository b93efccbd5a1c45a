"""The shadow rule set in stage C: same inputs as the active set, compared, never acted on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rules import compile_sources
from schemas import InboundMessage, ShadowDisagreement, Topics
from streams import metrics
from streams.casework import apply_message
from streams.records import ThreadedMessage
from streams.shadow import ShadowCheck, differing_fields

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)

ACTIVE = """
version: 1
calendars: {always: 24x7}
sla:
  std:
    calendar: always
    targets: {normal: {first_response: 1h}, high: {first_response: 30m}}
queues: {general: {}, billing: {}, tier2: {}}
routes:
  queue: general
  priority: normal
  sla: std
  routes:
    - name: billing
      when: {text: {any: [refund]}}
      queue: billing
      tags: [billing, money]
"""


def _threaded(external_id: str, text: str) -> ThreadedMessage:
    message = InboundMessage.model_validate(
        {
            "channel": "email",
            "external_id": external_id,
            "sender": "ana@example.com",
            "text": text,
            "sent_at": T0.isoformat(),
        }
    )
    return ThreadedMessage(
        case_id=f"C-{external_id.upper():A<10}"[:12],
        customer_id="cus_1",
        opens_case=True,
        evidence="test",
        message=message,
        ingested_at=T0,
    )


def test_a_shadow_that_moves_billing_disagrees_on_the_queue_only_for_billing() -> None:
    active = compile_sources({"rules.yaml": ACTIVE})
    shadow = compile_sources({"rules.yaml": ACTIVE.replace("queue: billing", "queue: tier2")})
    check = ShadowCheck(shadow, Topics("t.").rules_shadow)
    before = metrics.SHADOW_DISAGREEMENTS.labels("queue")._value.get()
    billing = _threaded("refund1", "please refund me")
    plain = _threaded("hello1", "hello there")
    with_shadow = apply_message(None, billing, active, check.for_case(billing.case_id))
    apply_message(None, plain, active, check.for_case(plain.case_id))
    without = apply_message(None, billing, active)
    assert [e.model_dump() for e in with_shadow.events] == [e.model_dump() for e in without.events]
    assert with_shadow.state.queue == "billing"  # the shadow is never acted on
    [record] = check.records
    assert record.topic == "t.rules.shadow" and record.key == billing.case_id.encode()
    disagreement = ShadowDisagreement.model_validate_json(record.value)
    assert disagreement.fields == ["queue"]
    assert disagreement.message_key == "email:refund1"
    assert disagreement.active["queue"] == "billing"
    assert disagreement.shadow["queue"] == "tier2"
    assert disagreement.shadow["rules_version"] == shadow.version
    assert json.loads(record.value)["at"].startswith("2027-01-04T09:00:00")
    assert metrics.SHADOW_DISAGREEMENTS.labels("queue")._value.get() == before + 1


def test_due_times_priority_and_policy_are_compared_tag_order_is_not() -> None:
    active = compile_sources({"rules.yaml": ACTIVE})
    faster = compile_sources(
        {"rules.yaml": ACTIVE.replace("first_response: 1h", "first_response: 2h")}
    )
    reordered = compile_sources(
        {"rules.yaml": ACTIVE.replace("[billing, money]", "[money, billing]")}
    )
    urgent = compile_sources(
        {
            "rules.yaml": ACTIVE.replace(
                "      tags: [billing, money]", "      tags: [billing, money]\n      priority: high"
            )
        }
    )
    message = _threaded("refund2", "refund please").message

    def decide(ruleset: object) -> object:
        return ruleset.evaluate(message, None, T0)  # type: ignore[attr-defined]

    assert differing_fields(decide(active), decide(active)) == []  # type: ignore[arg-type]
    assert differing_fields(decide(active), decide(reordered)) == []  # type: ignore[arg-type]
    assert differing_fields(decide(active), decide(faster)) == ["sla.first_response"]  # type: ignore[arg-type]
    assert differing_fields(decide(active), decide(urgent)) == ["priority", "sla.first_response"]  # type: ignore[arg-type]


def test_a_failing_shadow_is_counted_and_the_message_still_routes() -> None:
    active = compile_sources({"rules.yaml": ACTIVE})

    class Broken:
        version = "sha256:broken"

        def evaluate(self, *_args: object) -> object:
            raise RuntimeError("boom")

    check = ShadowCheck(Broken(), "t.rules.shadow")  # type: ignore[arg-type]
    before = metrics.SHADOW_DISAGREEMENTS.labels("error")._value.get()
    threaded = _threaded("refund3", "refund")
    update = apply_message(None, threaded, active, check.for_case(threaded.case_id))
    assert update.state.queue == "billing"
    assert check.records == []
    assert metrics.SHADOW_DISAGREEMENTS.labels("error")._value.get() == before + 1
