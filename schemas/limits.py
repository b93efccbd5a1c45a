"""Every bound the contracts enforce, in one place: what a record may hold, and why that much.

The numbers follow from what the rest of the pipeline can carry: Kafka's record limit
(librdkafka's `message.max.bytes`, 1,000,000 bytes by default), the JSON parser's nesting
limit, and PostgreSQL's B-tree index rows (at most 2,704 bytes). docs/operations.md
("Limits") lists them for operators; the JSON Schema export carries them too.
"""

from __future__ import annotations

import re
from typing import Any

import pydantic_core

MAX_ID_LENGTH = 1_024
"""Characters of an identifier: `external_id`, `sender`, `customer.id`, thread ids."""

MAX_ID_BYTES = 2_048
"""UTF-8 bytes of an identifier. The case store indexes customer ids and message keys, and a
PostgreSQL B-tree index row holds at most 2,704 bytes; 1,024 characters of ASCII (or of
two-byte scripts) fit, 1,024 CJK characters or emoji do not."""

MAX_CHANNEL_LENGTH = 32
"""Characters of a channel name (`[a-z][a-z0-9_-]`)."""

MAX_MESSAGE_KEY_LENGTH = MAX_CHANNEL_LENGTH + 1 + MAX_ID_LENGTH
"""Characters of a message key, `channel:external_id` (the case store's column length)."""

MAX_TEXT_LENGTH = 100_000
"""Characters of a message body or an agent's reply or note; longer belongs in an attachment."""

MAX_SUBJECT_LENGTH = 2_000
"""Characters of `subject`. A longer subject is cut to this (ending in `…`) and kept whole in
`subject_full`, never refused."""

MAX_SUBJECT_FULL_LENGTH = MAX_TEXT_LENGTH
"""Characters of `subject_full`, the whole of a subject that was cut."""

MAX_NESTING_DEPTH = 32
"""Levels of objects and arrays inside `metadata` and inside the customer's attributes
(the object itself is level 1). The worker's JSON parser stops at about 200 levels for a
whole record, so a message must stay far below it."""

MAX_METADATA_BYTES = 524_288
"""UTF-8 bytes of `metadata` as compact JSON (512 KiB): room for a mail's full body of
100,000 characters (kept in `metadata.full_body`) with its headers."""

MAX_CUSTOMER_BYTES = 65_536
"""UTF-8 bytes of `customer` (the sender's known attributes) as compact JSON (64 KiB)."""

MAX_ATTRIBUTE_LENGTH = 1_024
"""Characters of a customer attribute (`tier`, `email`, `phone`, `name`) and of an
attachment's `filename`."""

MAX_ATTACHMENTS = 1_000
"""Attachments one message may list (their metadata; the bytes stay with the channel). As
many as the mail connectors' MIME part cap lets a mail carry."""

MAX_ATTACHMENT_SIZE = 4 * 1024**3
"""Declared bytes of one attachment (4 GiB): above what any channel delivers, and within
every consumer's 64-bit integers."""

MAX_CONTENT_TYPE_LENGTH = 255
"""Characters of an attachment's `content_type` (RFC 6838: type and subtype of 127 each)."""

MAX_URL_LENGTH = 8_192
"""Characters of an attachment's `url`."""

MAX_RECIPIENTS = 1_000
"""Addresses one message may list per recipient field (mail `To`, `Cc`, envelope): ten times
the SMTP server's default cap on envelope recipients, room for large `Cc` lists."""

MAX_AGENT_ID_LENGTH = 64
"""Characters of an agent's name (the desk's limit)."""

MAX_ACTION_ID_LENGTH = 128
"""Characters of an agent action's idempotency key."""

MAX_REASON_LENGTH = 1_000
"""Characters of an agent action's `reason`."""

QUEUE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,99}$"
"""A queue name: lowercase letters, digits, `_` or `-`, up to 100 characters. The same rule
names the queue's topic (`Topics.queue`), so an action can only name a queue that can exist."""

MAX_BATCH = 1_000
"""Messages one ingress request may carry."""

PRODUCER_MAX_RECORD_BYTES = 1_000_000
"""librdkafka's `message.max.bytes` default: the largest record (key, value, headers and
about 60 bytes of framing) a producer sends; the broker's own limit (1,048,588) is above it."""

MAX_MESSAGE_RECORD_BYTES = 983_040
"""Bytes of one inbound message's record (key + JSON value + headers), 960 KiB: what the
ingress and the webhooks publish at most. The rest of `PRODUCER_MAX_RECORD_BYTES` is room for
what the worker adds when it re-keys the message (customer and case ids, evidence)."""

MAX_JSON_DEPTH = 200
"""Nesting levels the edge's JSON parser (pydantic-core's) accepts in a request body; a
deeper body is refused with 400 before any validation."""

_QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)


def is_queue_name(name: str) -> bool:
    """True when `name` is a valid queue name (see `QUEUE_NAME_PATTERN`)."""
    return _QUEUE_NAME.match(name) is not None


def check_queue_name(name: str) -> str:
    """Return `name` if it is a valid queue name; raise ValueError saying what is allowed."""
    if not is_queue_name(name):
        raise ValueError(
            f"invalid queue name {name!r}: use lowercase letters, digits, _ or - "
            "(starting with a letter or digit, at most 100)"
        )
    return name


def check_identifier_bytes(value: str) -> str:
    """Return `value` if its UTF-8 encoding fits `MAX_ID_BYTES`; raise ValueError otherwise."""
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_ID_BYTES:
        raise ValueError(f"at most {MAX_ID_BYTES} bytes in UTF-8 (this is {size})")
    return value


def nesting_depth(value: Any, limit: int) -> int:
    """Levels of objects and arrays in `value` (a scalar is 0), counted up to `limit` + 1.

    Iterative, so an arbitrarily deep value cannot exhaust the interpreter's stack.
    """
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        for child in children:  # only containers go on: most values are scalars
            if isinstance(child, dict | list | tuple):
                pending.append((child, depth + 1))
    return deepest


def json_size(value: Any) -> int:
    """UTF-8 bytes of `value` as compact JSON (how a record carries it)."""
    return len(pydantic_core.to_json(value))


def check_json_bounds(value: Any, max_depth: int, max_bytes: int) -> Any:
    """Return `value` if it nests at most `max_depth` levels and fits `max_bytes` as JSON."""
    depth = nesting_depth(value, max_depth)
    if depth > max_depth:
        raise ValueError(f"nested more than {max_depth} levels deep")
    size = json_size(value)
    if size > max_bytes:
        raise ValueError(f"at most {max_bytes} bytes as JSON (this is {size})")
    return value
