"""Every field a sender controls is bounded at the edge, below what the pipeline can carry.

Each test here failed on the contracts before the bounds: the deep metadata and the invalid
queue were accepted (and crashed the worker later), the long subject was refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import (
    AgentAction,
    IdentityRecord,
    InboundMessage,
    Topics,
    export_json_schemas,
    limits,
)
from streams.records import ResolvedMessage, ThreadedMessage

MESSAGE: dict[str, Any] = {
    "channel": "chat",
    "external_id": "m-1",
    "sender": "ana@example.com",
    "text": "Hello",
    "sent_at": "2026-11-20T09:30:00Z",
}

ACTION: dict[str, Any] = {
    "action_id": "a-1",
    "case_id": "C-ABCDEF2345",
    "agent_id": "sam",
    "at": "2026-11-20T10:00:00Z",
}


def nested(depth: int) -> Any:
    """A JSON value with `depth` levels of objects: {"a": {"a": ... "x"}}."""
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def problems(model: type[Any], data: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {".".join(map(str, e["loc"])) or "(message)": e["msg"] for e in caught.value.errors()}


def test_metadata_nested_199_levels_is_refused_with_its_reason() -> None:
    found = problems(InboundMessage, {**MESSAGE, "metadata": nested(199)})
    assert "nested more than 32 levels deep" in found["metadata"]


def test_every_message_the_contract_accepts_survives_the_workers_parse() -> None:
    """At the bound, the message still parses where the worker wraps it twice over."""
    message = InboundMessage.model_validate(
        {
            **MESSAGE,
            "metadata": nested(limits.MAX_NESTING_DEPTH),
            "customer": {"id": "c-1", "crm": nested(limits.MAX_NESTING_DEPTH - 1)},
        }
    )
    resolved = ResolvedMessage(
        customer_id="c-1", message=message, ingested_at=message.sent_at, identity_evidence="x"
    )
    again = ResolvedMessage.model_validate_json(resolved.model_dump_json())
    threaded = ThreadedMessage(
        case_id="C-ABCDEF2345",
        customer_id="c-1",
        opens_case=True,
        evidence="new case",
        message=again.message,
        ingested_at=again.ingested_at,
    )
    assert ThreadedMessage.model_validate_json(threaded.model_dump_json()).message == message


def test_customer_attributes_are_bounded_in_depth_and_bytes() -> None:
    deep = problems(InboundMessage, {**MESSAGE, "customer": {"crm": nested(199)}})
    assert "nested more than 32 levels" in deep["customer"]
    big = {"crm": "x" * (limits.MAX_CUSTOMER_BYTES + 1)}
    assert "bytes as JSON" in problems(InboundMessage, {**MESSAGE, "customer": big})["customer"]
    long_name = {"name": "n" * (limits.MAX_ATTRIBUTE_LENGTH + 1)}
    assert "customer.name" in problems(InboundMessage, {**MESSAGE, "customer": long_name})


def test_metadata_is_bounded_in_bytes_and_a_mails_full_body_fits() -> None:
    fits = {"full_body": "€" * limits.MAX_TEXT_LENGTH, "to": ["a@example.com"]}
    assert InboundMessage.model_validate({**MESSAGE, "metadata": fits}).metadata == fits
    too_big = {"blob": "x" * limits.MAX_METADATA_BYTES}
    assert "bytes as JSON" in problems(InboundMessage, {**MESSAGE, "metadata": too_big})["metadata"]


def test_recipient_lists_are_bounded() -> None:
    many = [f"r{i}@example.com" for i in range(limits.MAX_RECIPIENTS + 1)]
    for field in ("to", "cc", "envelope_recipients"):
        found = problems(InboundMessage, {**MESSAGE, "metadata": {field: many}})
        assert f"`{field}` lists {len(many)} recipients" in found["metadata"]
    fine = {"to": many[: limits.MAX_RECIPIENTS]}
    assert InboundMessage.model_validate({**MESSAGE, "metadata": fine}).metadata == fine


def test_attachments_are_bounded_in_count_and_size() -> None:
    one = {"filename": "a.pdf", "size": 10}
    over = [one] * (limits.MAX_ATTACHMENTS + 1)
    many = problems(InboundMessage, {**MESSAGE, "attachments": over})
    assert f"at most {limits.MAX_ATTACHMENTS} items" in many["attachments"]
    huge = {"filename": "a.pdf", "size": 10**30}
    assert "attachments.0.size" in problems(InboundMessage, {**MESSAGE, "attachments": [huge]})
    long_name = {"filename": "a" * 5000}
    found = problems(InboundMessage, {**MESSAGE, "attachments": [long_name]})
    assert "attachments.0.filename" in found
    limit = [{**one, "size": limits.MAX_ATTACHMENT_SIZE}] * limits.MAX_ATTACHMENTS
    accepted = InboundMessage.model_validate({**MESSAGE, "attachments": limit})
    assert len(accepted.attachments) == limits.MAX_ATTACHMENTS


def test_an_over_long_subject_is_cut_and_kept_whole() -> None:
    subject = "Refund " + "please " * 1000  # 7,007 characters: refused before
    message = InboundMessage.model_validate({**MESSAGE, "subject": subject})
    assert message.subject is not None and len(message.subject) == limits.MAX_SUBJECT_LENGTH
    assert message.subject.endswith("…") and subject.startswith(message.subject[:-1])
    assert message.subject_full == subject
    again = InboundMessage.model_validate_json(message.model_dump_json())
    assert again == message  # cutting is idempotent: a re-read record stays the same
    short = InboundMessage.model_validate({**MESSAGE, "subject": "Refund"})
    assert short.subject == "Refund" and short.subject_full is None
    assert "subject_full" not in short.model_dump_json(exclude_none=True)


def test_a_subject_beyond_what_a_message_keeps_is_refused_with_its_reason() -> None:
    found = problems(InboundMessage, {**MESSAGE, "subject": "s" * (limits.MAX_TEXT_LENGTH + 1)})
    assert "at most 100000 are kept" in found["(message)"]


def test_identifiers_are_bounded_in_characters_and_bytes() -> None:
    ascii_id = "i" * limits.MAX_ID_LENGTH
    assert InboundMessage.model_validate({**MESSAGE, "external_id": ascii_id}).external_id
    two_byte = "é" * limits.MAX_ID_LENGTH  # 2,048 bytes: fits a PostgreSQL index row
    assert InboundMessage.model_validate({**MESSAGE, "sender": two_byte}).sender == two_byte
    cjk = "客" * 700  # 2,100 bytes in UTF-8
    found = problems(InboundMessage, {**MESSAGE, "customer": {"id": cjk}})
    assert "at most 2048 bytes in UTF-8" in found["customer.id"]
    assert "external_id" in problems(InboundMessage, {**MESSAGE, "external_id": "i" * 1025})


def test_a_transfer_to_an_invalid_queue_is_refused_where_the_action_is_made() -> None:
    found = problems(AgentAction, {**ACTION, "type": "transfer", "queue": "Bad Queue"})
    assert "invalid queue name 'Bad Queue'" in found["queue"]
    with pytest.raises(ValueError, match="invalid queue name 'Bad Queue'"):
        Topics().queue("Bad Queue")  # the same rule as the topic's
    for name in ("tier2", "billing-eu", "a_b", "x" * 100):
        action = AgentAction.model_validate({**ACTION, "type": "transfer", "queue": name})
        assert Topics().queue(action.queue or "")
    assert "queue" in problems(AgentAction, {**ACTION, "type": "transfer", "queue": "x" * 101})


def test_agent_action_text_and_ids_are_bounded() -> None:
    text = "t" * (limits.MAX_TEXT_LENGTH + 1)
    assert "text" in problems(AgentAction, {**ACTION, "type": "reply", "text": text})
    assert "agent_id" in problems(AgentAction, {**ACTION, "type": "claim", "agent_id": "a" * 65})
    assert "case_id" in problems(AgentAction, {**ACTION, "type": "claim", "case_id": "C" * 65})
    found = problems(AgentAction, {**ACTION, "type": "assign", "to_agent": "b" * 65})
    assert "to_agent" in found


def test_the_json_schema_export_carries_the_bounds(tmp_path: Path) -> None:
    export_json_schemas(tmp_path)
    inbound = json.loads((tmp_path / "inbound-message.schema.json").read_text())
    fields = inbound["properties"]
    assert fields["subject"]["anyOf"][0]["maxLength"] == limits.MAX_SUBJECT_LENGTH
    assert fields["attachments"]["maxItems"] == limits.MAX_ATTACHMENTS
    assert fields["metadata"]["x-max-depth"] == limits.MAX_NESTING_DEPTH
    assert fields["metadata"]["x-max-bytes"] == limits.MAX_METADATA_BYTES
    assert fields["external_id"]["maxLength"] == limits.MAX_ID_LENGTH
    assert fields["external_id"]["x-max-bytes"] == limits.MAX_ID_BYTES
    attachment = inbound["$defs"]["Attachment"]["properties"]
    assert attachment["size"]["anyOf"][0]["maximum"] == limits.MAX_ATTACHMENT_SIZE
    action = json.loads((tmp_path / "agent-action.schema.json").read_text())
    assert action["properties"]["queue"]["anyOf"][0]["pattern"] == limits.QUEUE_NAME_PATTERN
    assert action["properties"]["text"]["anyOf"][0]["maxLength"] == limits.MAX_TEXT_LENGTH


def test_identity_records_carry_customer_ids_the_store_can_keep() -> None:
    record = {"kind": "merge", "reason": "same person", "at": "2026-11-20T10:00:00Z"}
    too_long = {**record, "customer_id": "c" * 1025, "merged_into": "c-2"}
    assert "customer_id" in problems(IdentityRecord, too_long)
    too_wide = {**record, "customer_id": "c-1", "merged_into": "客" * 700}
    assert "at most 2048 bytes" in problems(IdentityRecord, too_wide)["merged_into"]
    fits = {**record, "customer_id": "c" * 1024, "merged_into": "é" * 1024}
    assert IdentityRecord.model_validate(fits).merged_into == "é" * 1024
