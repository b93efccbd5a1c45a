"""Small builders shared by the rule tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import rules
from schemas import InboundMessage

MONDAY_9 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def message(**fields: Any) -> InboundMessage:
    """An inbound email with sensible defaults; any field may be overridden."""
    data: dict[str, Any] = {
        "channel": "email",
        "external_id": "m-1",
        "sender": "ada@example.com",
        "text": "hello",
        "sent_at": MONDAY_9,
    }
    data.update(fields)
    return InboundMessage.model_validate(data)


def ruleset(routes_yaml: str, extra: str = "") -> rules.CompiledRuleSet:
    """Compile a rule set with queues q0..q9 and the given `routes:` block (YAML text)."""
    queues = "queues: {" + ", ".join(f"q{i}: {{}}" for i in range(10)) + ", general: {}}\n"
    return rules.compile_sources({"test.yaml": queues + extra + routes_yaml})


def decide(
    rs: rules.CompiledRuleSet, case: rules.CaseFacts | None = None, **fields: Any
) -> rules.Decision:
    """Evaluate one message and check that explain agrees with evaluate."""
    msg = message(**fields)
    decision = rs.evaluate(msg, case, msg.sent_at)
    assert rs.explain(msg, case, msg.sent_at).decision == decision
    return decision
