"""Hypothesis strategies for hostile input: any JSON, near-valid messages, raw bytes.

`FUZZ_EXAMPLES` is the number of examples per property (`ESCALATOR_FUZZ_EXAMPLES`; the test
suite keeps it small, `make fuzz` runs 10,000 per entry point).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = int(os.environ.get("ESCALATOR_FUZZ_EXAMPLES", "60"))

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
"""The settings every fuzz property runs with."""

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=200),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=20), inner, max_size=6)
    ),
    max_leaves=40,
)
"""Any JSON value."""

MESSAGE_FIELDS = (
    "channel",
    "external_id",
    "sender",
    "text",
    "sent_at",
    "subject",
    "thread_ref",
    "in_reply_to",
    "customer",
    "attachments",
    "metadata",
)
VALID_MESSAGE: dict[str, Any] = {
    "channel": "chat",
    "external_id": "fuzz-1",
    "sender": "visitor-1",
    "text": "Is anyone there?",
    "sent_at": "2026-11-20T09:30:00Z",
}


@st.composite
def near_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid inbound message with some fields replaced, removed or added at random."""
    message = dict(VALID_MESSAGE)
    message["external_id"] = draw(st.text(min_size=1, max_size=40))
    for name in draw(st.lists(st.sampled_from(MESSAGE_FIELDS), max_size=4, unique=True)):
        if draw(st.booleans()):
            message[name] = draw(JSON)
        else:
            message.pop(name, None)
    return message


def deep(levels: int) -> str:
    """A JSON document nested `levels` deep."""
    return "[" * levels + "]" * levels


BODIES = st.one_of(
    st.binary(max_size=2000),
    JSON.map(lambda value: json.dumps(value).encode()),
    near_messages().map(lambda message: json.dumps(message).encode()),
    st.lists(near_messages(), max_size=5).map(lambda batch: json.dumps(batch).encode()),
    st.integers(min_value=1, max_value=5000).map(lambda n: deep(n).encode()),
)
"""Request bodies: bytes, any JSON, near-valid messages and batches, deep nesting."""
