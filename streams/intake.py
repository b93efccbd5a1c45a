"""Stage A, keyed by sender handle: parse and validate raw records, resolve the customer.

Anything that does not parse becomes a `DeadLetter` with the reason and the original
bytes; nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from kafkaio import ConsumedRecord
from schemas import DeadLetter, IdentityRecord, InboundMessage
from streams.identity import IdentityDirectory
from streams.output import MAX_RECORD_BYTES
from streams.records import ResolvedMessage

RawRecord = ConsumedRecord
"""One record as consumed (kafkaio's type): where it came from, its bytes and its timestamp."""


@dataclass(frozen=True)
class Admitted:
    """A valid message with its customer, and the identity links deciding it made."""

    resolved: ResolvedMessage
    links: list[IdentityRecord] = field(default_factory=list)


def resolve_customer(
    message: InboundMessage, directory: IdentityDirectory | None = None
) -> tuple[str, str]:
    """Decide the customer id of a message and say on what evidence (see `streams.identity`).

    Only strong evidence counts: a customer id the channel supplied, a verified email or
    phone, an operator's merge; otherwise the normalised channel handle (never a name).
    """
    resolution = (directory or IdentityDirectory()).resolve(message, datetime.now(UTC))
    return resolution.customer_id, resolution.evidence


def intake(record: RawRecord, directory: IdentityDirectory | None = None) -> Admitted | DeadLetter:
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
    resolution = (directory or IdentityDirectory()).resolve(message, record.timestamp)
    resolved = ResolvedMessage(
        customer_id=resolution.customer_id,
        message=message,
        ingested_at=record.timestamp,
        identity_evidence=resolution.evidence,
    )
    return Admitted(resolved=resolved, links=resolution.records)


def dead_letter(
    record: RawRecord,
    reason: str,
    detail: str,
    stage: str = "intake",
    max_bytes: int = MAX_RECORD_BYTES,
) -> DeadLetter:
    """A dead-letter record for a raw record: why it was refused, with its exact bytes.

    The bytes travel whole when they fit in a record, else by reference (size and hash);
    `at` is the record's own Kafka timestamp, so a replay writes the same letter.
    """
    return DeadLetter.of(
        stage=stage,
        reason=reason,
        detail=detail,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        at=record.timestamp,
        max_bytes=max_bytes,
    )
