"""The reply service's dead letters: a `cases.events` record it cannot process, kept whole."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message

from schemas import DeadLetter

MAX_ORIGINAL_BYTES = 700_000
"""Largest original (key and value) copied into a letter: base64 grows it by a third, < 1 MB."""

STAGE = "replies"
"""The `stage` header of every letter the reply service writes."""


def dead_letter(
    message: Message[Any, Any], reason: str, detail: str
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the letter for `message`: its reason, detail and bytes.

    An original too large to copy is referred to by topic, partition and offset instead.
    """
    key, value = message.key(), message.value() or b""
    copied = len(value) + len(key or b"") <= MAX_ORIGINAL_BYTES
    if not copied:
        where = f"{message.topic()}/{message.partition()}@{message.offset()}"
        detail = f"{detail[:2000]} (original of {len(value)} bytes not copied; see {where})"
    letter = DeadLetter(
        reason=reason,
        detail=detail[:4000],
        source_topic=message.topic() or "",
        source_partition=message.partition() or 0,
        source_offset=message.offset() or 0,
        original_key_b64=DeadLetter.encode(key) if copied else None,
        original_b64=(DeadLetter.encode(value) or "") if copied else "",
        at=datetime.now(UTC),
    )
    headers = [("stage", STAGE.encode()), ("reason", reason.encode())]
    return (key if copied else None), letter.model_dump_json().encode("utf-8"), headers
