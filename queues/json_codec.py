"""JSON of the case store's JSON columns: written with orjson, read with pydantic's parser.

Writing JSON was a visible share of the projection's time (every event's payload is
stored as JSON): orjson writes it about ten times faster than `json.dumps`. It refuses
integers beyond 64 bits, which a payload parsed by pydantic may hold; those documents
alone are written by the standard library, so every value stays exact. Reading uses
pydantic-core's parser, the one that parsed the records: it keeps such integers exact,
where orjson would turn them into floats.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pydantic_core

_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS
"""Dict keys that are not strings (an int, an enum) become strings, as `json.dumps` does."""


def dumps(value: Any) -> str:
    """`value` as compact JSON text (orjson; the standard library for what orjson refuses)."""
    try:
        return orjson.dumps(value, option=_DUMP_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    """Parse a JSON document as pydantic parsed the record it came from."""
    return pydantic_core.from_json(text)
