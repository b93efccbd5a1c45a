"""The public contracts accept what DESIGN.md documents and reject bad data with clear messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import (
    AgentAction,
    AgentPresence,
    Case,
    CaseEvent,
    DeadLetter,
    InboundMessage,
    PresenceState,
    Priority,
    Topics,
    export_json_schemas,
)
from schemas.ids import case_id_for, customer_id_for_handle, event_id_for, successor_case_id

MESSAGE: dict[str, Any] = {
    "channel": "email",
    "external_id": "<CAF=abc@mail.example.com>",
    "sender": "ana@example.com",
    "text": "Hello",
    "sent_at": "2026-11-20T09:30:00Z",
    "subject": "Refund",
    "thread_ref": "<CAF=abc@mail.example.com>",
    "customer": {"id": "cus_1", "tier": "vip", "email": "ana@example.com", "plan": "pro"},
    "attachments": [{"filename": "invoice.pdf", "content_type": "application/pdf", "size": 12}],
    "metadata": {"ticket_form": 4},
}


def errors_of(model: type[Any], data: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


def test_full_inbound_message_round_trips() -> None:
    message = InboundMessage.model_validate(MESSAGE)
    assert message.message_key == "email:<CAF=abc@mail.example.com>"
    assert message.customer.model_extra == {"plan": "pro"}
    assert message.sent_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    again = InboundMessage.model_validate_json(message.model_dump_json())
    assert again == message


def test_channel_is_normalised_and_open_ended() -> None:
    assert InboundMessage.model_validate({**MESSAGE, "channel": "Email "}).channel == "email"
    assert InboundMessage.model_validate({**MESSAGE, "channel": "line"}).channel == "line"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"sent_at": "2026-11-20T09:30:00"}, "sent_at", "timezone"),
        ({"sent_at": "last tuesday"}, "sent_at", "datetime"),
        ({"channel": "e mail"}, "channel", "pattern"),
        ({"sender": ""}, "sender", "at least 1"),
        ({"text": None}, "text", "valid string"),
        ({"unknown": 1}, "unknown", "Extra inputs"),
        ({"attachments": [{"size": -1, "filename": "a"}]}, "attachments.0.size", "greater"),
        ({"customer": {"id": ""}}, "customer.id", "at least 1"),
    ],
)
def test_inbound_message_rejections_name_field_and_problem(
    change: dict[str, Any], field: str, words: str
) -> None:
    problems = errors_of(InboundMessage, {**MESSAGE, **change})
    assert field in problems
    assert words.lower() in problems[field].lower()


def test_missing_required_fields_are_all_reported() -> None:
    problems = errors_of(InboundMessage, {"channel": "sms"})
    assert set(problems) == {"external_id", "sender", "text", "sent_at"}


def test_priority_shifts_clamp_to_the_range() -> None:
    assert Priority.NORMAL.shifted(1) is Priority.HIGH
    assert Priority.HIGH.shifted(5) is Priority.URGENT
    assert Priority.NORMAL.shifted(-7) is Priority.LOW


def test_case_needs_a_message_and_a_case_id_in_format() -> None:
    problems = errors_of(
        Case,
        {
            "case_id": "42",
            "queue": "general",
            "priority": "normal",
            "customer_id": "c",
            "messages": [],
        },
    )
    assert "case_id" in problems
    assert "messages" in problems


def test_agent_action_fields_must_fit_the_type() -> None:
    base = {
        "action_id": "a1",
        "case_id": "C-ABCDEF",
        "agent_id": "sam",
        "at": "2026-11-20T10:00:00Z",
    }
    assert AgentAction.model_validate({**base, "type": "claim"}).type.value == "claim"
    assert "needs `text`" in str(errors_of(AgentAction, {**base, "type": "reply"}))
    assert "needs `status`" in str(errors_of(AgentAction, {**base, "type": "status"}))
    assert "queue" in str(errors_of(AgentAction, {**base, "type": "transfer"}))
    status = AgentAction.model_validate({**base, "type": "status", "status": "waiting_on_customer"})
    assert status.status is not None
    assert "status" in errors_of(AgentAction, {**base, "type": "status", "status": "asleep"})


def test_case_event_type_format() -> None:
    event = {"event_id": "0123456789abcdef", "case_id": "C-1", "at": "2026-11-20T10:00:00Z"}
    assert "type" in errors_of(CaseEvent, {**event, "type": "Opened", "reason": "x"})
    assert "reason" in errors_of(CaseEvent, {**event, "type": "case.opened"})


def test_dead_letter_keeps_the_exact_bytes() -> None:
    raw = b"\xff\x00not json"
    letter = DeadLetter(
        reason="invalid_json",
        detail="x",
        source_topic="t",
        source_partition=0,
        source_offset=1,
        original_b64=DeadLetter.encode(raw) or "",
        at=datetime.now(UTC),
    )
    assert DeadLetter.model_validate_json(letter.model_dump_json()).original_bytes() == raw


def test_ids_are_deterministic_and_distinct() -> None:
    assert case_id_for("cus", "email:1") == case_id_for("cus", "email:1")
    assert case_id_for("cus", "email:1") != case_id_for("cus", "email:2")
    assert Case.model_fields["case_id"].metadata  # format is enforced
    assert event_id_for("C-1", "case.opened") != event_id_for("C-2", "case.opened")
    assert customer_id_for_handle("sms", " +49151 ") == customer_id_for_handle("sms", "+49151")


def test_ids_never_change_between_releases() -> None:
    """A worker of the next release replays the same input into the same ids (the values
    are those of the first release: a change here makes replays after an upgrade write
    duplicates under new ids)."""
    assert case_id_for("cus-1", "email:<a@b>") == "C-JCHHZP3QM2"
    assert case_id_for("Zoë", "chat:中") == "C-V4DBQ2VPOZ"
    assert successor_case_id("cus-1", "C-AAAAAAAAAA") == "C-GPTYB67V2U"
    assert (
        event_id_for("C-AAAAAAAAAA", "sla.warning", "first_response#1:warning:2027-01-04T09:00:00Z")
        == "ed91f95c2eb93f9188cd8aabee552e3f"
    )
    assert customer_id_for_handle("sms", " +49151 ") == "H-938b7c59eebeb443ad51"


def test_topic_names_follow_the_prefix() -> None:
    topics = Topics("acme.")
    assert topics.inbound == "acme.messages.inbound"
    assert topics.queue("tier-2") == "acme.queue.tier-2"
    with pytest.raises(ValueError, match="invalid queue name"):
        topics.queue("Tier 2")


def test_every_topic_name_is_the_prefix_and_its_contract_suffix() -> None:
    topics = Topics("acme.")
    names = {
        "inbound": "messages.inbound",
        "dlq": "messages.dlq",
        "case_events": "cases.events",
        "agent_actions": "agent.actions",
        "agent_presence": "agents.presence",
        "rules": "rules",
        "rules_history": "rules.history",
        "identity": "customers.identity",
        "reply_deliveries": "replies.deliveries",
        "assigner": "desk.assigner",
        "resolved": "messages.resolved",
        "threaded": "messages.threaded",
        "queue_prefix": "queue.",
    }
    assert {attribute: getattr(topics, attribute) for attribute in names} == {
        attribute: "acme." + suffix for attribute, suffix in names.items()
    }
    assert Topics().inbound == "escalator.messages.inbound"
    assert topics.state_changelog("c") == "acme.worker.c.changelog"


def test_json_schemas_export(tmp_path: Path) -> None:
    paths = export_json_schemas(tmp_path)
    names = sorted(p.name for p in paths)
    assert "inbound-message.schema.json" in names
    schema = json.loads((tmp_path / "inbound-message.schema.json").read_text())
    assert set(schema["required"]) == {"channel", "external_id", "sender", "text", "sent_at"}
    assert schema["additionalProperties"] is False


def test_agent_presence_contract_topic_and_schema(tmp_path: Path) -> None:
    record = AgentPresence.model_validate(
        {
            "presence_id": "p-1",
            "agent_id": "ana",
            "presence": "away",
            "at": "2026-11-26T09:00:00Z",
            "by": "lee",
        }
    )
    assert record.presence is PresenceState.AWAY and record.expected_presence_id is None
    assert errors_of(AgentPresence, {**record.model_dump(), "presence": "busy"}).keys() == {
        "presence"
    }
    assert Topics("x.").agent_presence == "x.agents.presence"
    export_json_schemas(tmp_path)
    schema = json.loads((tmp_path / "agent-presence.schema.json").read_text())
    assert set(schema["required"]) == {"presence_id", "agent_id", "presence", "at", "by"}
