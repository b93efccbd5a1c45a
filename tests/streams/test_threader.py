"""Stage B: duplicates are dropped, follow-ups join the open case, thread refs are honoured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import InboundMessage
from streams.intake import Admitted, RawRecord, intake, resolve_customer
from streams.records import ResolvedMessage, ThreadedMessage
from streams.threader import DEDUP_RETENTION, CustomerState, NotThreaded, thread

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def resolved(external_id: str, at: datetime = T0, **extra: Any) -> ResolvedMessage:
    message = InboundMessage.model_validate(
        {
            "channel": "email",
            "external_id": external_id,
            "sender": "ana@example.com",
            "text": "hello",
            "sent_at": at.isoformat(),
            **extra,
        }
    )
    customer_id, evidence = resolve_customer(message)
    return ResolvedMessage(
        customer_id=customer_id, message=message, ingested_at=at, identity_evidence=evidence
    )


def test_first_message_opens_a_case_and_follow_up_joins_it() -> None:
    state, first = thread(None, resolved("m1"))
    assert isinstance(first, ThreadedMessage) and first.opens_case
    state, second = thread(state, resolved("m2", T0 + timedelta(minutes=5)))
    assert isinstance(second, ThreadedMessage) and not second.opens_case
    assert second.case_id == first.case_id
    assert second.evidence == "customer has an open case"


def test_duplicate_is_dropped_and_state_unchanged() -> None:
    state, _ = thread(None, resolved("m1"))
    again, duplicate = thread(state, resolved("m1"))
    assert duplicate == NotThreaded("duplicate", "email:m1 was already processed")
    assert again == state


def test_thread_ref_wins_over_the_open_case() -> None:
    state, first = thread(None, resolved("m1", thread_ref="<a@x>"))
    assert isinstance(first, ThreadedMessage)
    state.open_case_id = "C-OTHERCASE"
    state, reply = thread(state, resolved("m2", in_reply_to="<a@x>"))
    assert isinstance(reply, ThreadedMessage)
    assert reply.case_id == first.case_id
    assert reply.evidence == "same thread (<a@x>)"


def test_replay_decides_the_same_case_id() -> None:
    _, once = thread(None, resolved("m1"))
    _, twice = thread(None, resolved("m1"))
    assert once == twice


def test_old_message_keys_are_forgotten_after_retention() -> None:
    state, _ = thread(None, resolved("m1"))
    later = T0 + DEDUP_RETENTION + timedelta(minutes=1)
    state, _ = thread(state, resolved("m2", later))
    assert "email:m1" not in state.seen
    assert "email:m2" in state.seen


def test_customer_id_prefers_the_channel_supplied_id() -> None:
    with_id = resolved("m1", customer={"id": "cus_9"})
    assert with_id.customer_id == "cus_9"
    assert resolved("m1").customer_id.startswith("H-")


def test_intake_dead_letters_with_reason_and_bytes() -> None:
    raw = RawRecord("in", 2, 40, b"k", b'{"channel": "email"}', T0)
    letter = intake(raw)
    assert not isinstance(letter, Admitted)
    assert letter.reason == "invalid_message"
    assert "sender" in letter.detail
    assert letter.original_bytes() == b'{"channel": "email"}'
    assert (letter.source_partition, letter.source_offset) == (2, 40)
    empty = intake(RawRecord("in", 0, 1, None, None, T0))
    assert not isinstance(empty, Admitted) and empty.reason == "empty_value"


def test_state_survives_its_json_form() -> None:
    state, _ = thread(None, resolved("m1", thread_ref="<a@x>"))
    assert CustomerState.model_validate(state.model_dump(mode="json")) == state
