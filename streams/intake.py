"""Stage A, keyed by sender handle: parse and validate raw records, resolve the customer.

Anything that does not parse becomes a `DeadLetter` with the reason and the original
bytes; nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas import DeadLetter, InboundMessage
from schemas.ids import customer_id_for_handle
from streams.records import ResolvedMessage


@dataclass(frozen=True)
class RawRecord:
    """One record as consumed: where it came from, its bytes and its Kafka timestamp."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: datetime


def resolve_customer(message: InboundMessage) -> tuple[str, str]:
    """Decide the customer id of a message and say on what evidence.

    Only strong evidence counts: a customer id the channel supplied. Otherwise the
    customer is known by the channel handle alone (never by a display name).
    """
    if message.customer.id:
        return message.customer.id, "customer.id supplied by the channel"
    return customer_id_for_handle(message.channel, message.sender), f"{message.channel} handle"


def intake(record: RawRecord) -> ResolvedMessage | DeadLetter:
    """Turn a raw inbound record into a resolved message, or a dead letter saying why not."""
    if record.value is None:
        return dead_letter(record, "empty_value", "the record has no value (tombstone?)")
    try:
        message = InboundMessage.model_validate_json(record.value)
    except ValidationError as exc:
        first_kind = exc.errors(include_url=False)[0]["type"]
        reason = "invalid_json" if first_kind == "json_invalid" else "invalid_message"
        details = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(record)'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        return dead_letter(record, reason, details)
    customer_id, evidence = resolve_customer(message)
    return ResolvedMessage(
        customer_id=customer_id,
        message=message,
        ingested_at=record.timestamp,
        identity_evidence=evidence,
    )


def dead_letter(record: RawRecord, reason: str, detail: str) -> DeadLetter:
    """A dead-letter record for a raw record: why it was refused, with its exact bytes."""
    return DeadLetter(
        reason=reason,
        detail=detail,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        original_key_b64=DeadLetter.encode(record.key),
        original_b64=DeadLetter.encode(record.value or b"") or "",
        at=datetime.now(UTC),
    )
