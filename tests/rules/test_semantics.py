"""Table tests of the routes tree: first match, continue, inheritance, priorities, tags."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import Priority
from tests.rules.helpers import decide, ruleset

TREE = """
routes:
  queue: general
  priority: normal
  tags: [inbound]
  routes:
    - name: billing
      when: {text: {any: [invoice, refund]}}
      queue: q1
      tags: [billing]
      routes:
        - name: billing-angry
          when: {text: {any: [furious]}}
          priority: +1
          tags: [angry]
    - name: vip
      when: {customer.tier: vip}
      priority: +1
      tags: [vip]
      continue: true
    - name: social
      when: {channel: [twitter, facebook]}
      queue: q2
      tags: [social]
    - name: vip-email
      when: {customer.tier: vip, channel: email}
      queue: q3
    - name: low-noise
      when: {text: {any: [unsubscribe]}}
      priority: low
      queue: q4
      routes:
        - name: low-noise-more
          when: {text: {any: [please]}}
          priority: -1
"""

CASES: list[tuple[str, dict[str, Any], str, Priority, set[str], list[str]]] = [
    ("nothing matches: the root decides", {}, "general", Priority.NORMAL, {"inbound"}, []),
    (
        "first match wins",
        {"text": "refund my invoice"},
        "q1",
        Priority.NORMAL,
        {"inbound", "billing"},
        ["billing"],
    ),
    (
        "child inherits and shifts priority",
        {"text": "furious about the invoice"},
        "q1",
        Priority.HIGH,
        {"inbound", "billing", "angry"},
        ["billing", "billing-angry"],
    ),
    (
        "continue lets later siblings match, tags accumulate",
        {"channel": "twitter", "customer": {"tier": "vip"}},
        "q2",
        Priority.HIGH,
        {"inbound", "vip", "social"},
        ["vip", "social"],
    ),
    (
        "a continuing route alone still applies",
        {"channel": "sms", "customer": {"tier": "VIP"}},
        "general",
        Priority.HIGH,
        {"inbound", "vip"},
        ["vip"],
    ),
    (
        "continue then a later match overrides the queue",
        {"customer": {"tier": "vip"}},
        "q3",
        Priority.HIGH,
        {"inbound", "vip"},
        ["vip", "vip-email"],
    ),
    (
        "earlier sibling without continue stops later ones",
        {"text": "invoice, unsubscribe me"},
        "q1",
        Priority.NORMAL,
        {"inbound", "billing"},
        ["billing"],
    ),
    (
        "relative priority is clamped at the bottom",
        {"text": "unsubscribe please"},
        "q4",
        Priority.LOW,
        {"inbound"},
        ["low-noise", "low-noise-more"],
    ),
]


@pytest.mark.parametrize(
    ("title", "fields", "queue", "priority", "tags", "matched"), CASES, ids=[c[0] for c in CASES]
)
def test_tree_semantics(
    title: str,
    fields: dict[str, Any],
    queue: str,
    priority: Priority,
    tags: set[str],
    matched: list[str],
) -> None:
    decision = decide(ruleset(TREE), **fields)
    assert (decision.queue, decision.priority, set(decision.tags), list(decision.matched)) == (
        queue,
        priority,
        tags,
        matched,
    )


def test_relative_priority_is_clamped_at_the_top() -> None:
    rs = ruleset(
        """
routes:
  queue: general
  priority: high
  routes:
    - {name: up, when: {channel: email}, priority: +3, continue: true}
    - {name: up-again, when: {channel: email}, priority: "+1"}
"""
    )
    assert decide(rs).priority is Priority.URGENT


def test_tags_keep_their_first_order_without_duplicates() -> None:
    rs = ruleset(
        """
routes:
  queue: general
  tags: [a, b]
  routes:
    - {name: one, tags: [b, c], continue: true}
    - {name: two, tags: [a, d]}
"""
    )
    assert decide(rs).tags == ("a", "b", "c", "d")


def test_sla_and_escalation_inherit_down_the_tree() -> None:
    extra = """
sla:
  std: {targets: {normal: {first_response: 1h}, urgent: {first_response: 10m}}}
  fast: {targets: {normal: {first_response: 5m}}}
escalations:
  std: [{on: breach, queue: q9}]
"""
    rs = ruleset(
        """
routes:
  queue: general
  sla: std
  escalation: std
  routes:
    - name: outer
      when: {channel: email}
      routes:
        - {name: inner, when: {text: {any: [urgent]}}, priority: urgent}
    - {name: fast, when: {channel: sms}, sla: fast}
""",
        extra,
    )
    decision = decide(rs, text="this is urgent")
    assert decision.matched == ("outer", "inner")
    assert decision.sla_policy == "std"
    assert decision.calendar == "24x7"
    assert decision.sla_due["first_response"] - decision_at(decision) == _minutes(10)
    assert decision.escalation_policy == "std"
    assert decision.escalations[0].queue == "q9"
    sms = decide(rs, channel="sms")
    assert sms.sla_policy == "fast"
    assert sms.sla_due["first_response"] - decision_at(sms) == _minutes(5)


def decision_at(decision: Any) -> Any:
    from tests.rules.helpers import MONDAY_9

    return MONDAY_9


def _minutes(n: int) -> Any:
    from datetime import timedelta

    return timedelta(minutes=n)


def test_many_children_use_the_index_and_agree_with_explain() -> None:
    children = "\n".join(
        f"    - {{name: r{i}, when: {{channel: sms, text: {{any: [word{i}]}}}}, queue: q{i % 10}}}"
        for i in range(40)
    )
    rs = ruleset("routes:\n  queue: general\n  routes:\n" + children + "\n")
    assert rs.root.index is not None
    decision = decide(rs, channel="sms", text="about word17 and word3")
    assert decision.matched == ("r3",)
    assert decide(rs, channel="email", text="word3").matched == ()
