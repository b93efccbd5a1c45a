"""Stage A applies the contract's bounds to records that bypassed the edge (a user's own producer).

Before the bounds, a message whose metadata nested 199 levels passed stage A and then failed
stage B's parse (pydantic-core's JSON parser stops at 200 levels), and the worker exited.
Now stage A dead-letters it with the reason, and what it admits stage B can read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from schemas import DeadLetter
from streams.intake import Admitted, RawRecord, intake
from streams.records import ResolvedMessage

MESSAGE = {
    "channel": "chat",
    "external_id": "m-1",
    "sender": "visitor-1",
    "text": "Hello",
    "sent_at": "2026-11-20T09:30:00Z",
}


def raw(value: dict[str, Any]) -> RawRecord:
    return RawRecord(
        topic="escalator.messages.inbound",
        partition=0,
        offset=7,
        key=b"visitor-1",
        value=json.dumps(value).encode(),
        timestamp=datetime(2026, 11, 20, 9, 30, 1, tzinfo=UTC),
    )


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_metadata_nested_199_levels_is_dead_lettered_by_stage_a_with_its_reason() -> None:
    outcome = intake(raw({**MESSAGE, "metadata": nested(199)}))
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "invalid_message"
    assert "metadata: Value error, nested more than 32 levels deep" in outcome.detail
    assert outcome.source_offset == 7


def test_what_stage_a_admits_stage_b_can_parse() -> None:
    outcome = intake(raw({**MESSAGE, "metadata": nested(32), "customer": {"crm": nested(31)}}))
    assert isinstance(outcome, Admitted)
    resolved = ResolvedMessage.model_validate_json(outcome.resolved.model_dump_json())
    assert resolved.message.metadata == nested(32)


def test_a_long_subject_from_a_direct_producer_is_cut_not_dead_lettered() -> None:
    subject = "s" * 5_000
    outcome = intake(raw({**MESSAGE, "subject": subject}))
    assert isinstance(outcome, Admitted)
    message = outcome.resolved.message
    assert message.subject is not None and len(message.subject) == 2_000
    assert message.subject_full == subject


def test_a_sender_that_grows_when_casefolded_is_still_admitted() -> None:
    """`ß` casefolds to `ss`: the handle stage A links may outgrow the sender's bound."""
    sender = "ß" * 1_024  # 1,024 characters, 2,048 bytes: at both bounds
    outcome = intake(raw({**MESSAGE, "sender": sender, "customer": {"id": "cust-9"}}))
    assert isinstance(outcome, Admitted)
    [link] = outcome.links
    assert (link.customer_id, link.handle) == ("cust-9", "chat:" + "ss" * 1_024)
