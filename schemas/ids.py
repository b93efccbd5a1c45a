"""Deterministic identifiers: the same input always gives the same case and event ids.

Determinism is what makes replays after a crash, restart or rebalance harmless:
a reprocessed message produces byte-identical events that consumers deduplicate.
"""

from __future__ import annotations

import base64
import hashlib
import re

CASE_ID_LENGTH = 10
"""Characters after `C-`: 50 bits of a SHA-256, enough to make collisions negligible."""


def _digest(*parts: str) -> bytes:
    """SHA-256 of the parts, each followed by the unit separator (one call: ids are hot)."""
    return hashlib.sha256(("\x1f".join(parts) + "\x1f").encode("utf-8")).digest()


CASE_REFERENCE = re.compile(rf"(?<![0-9A-Za-z])C-([A-Z2-7]{{{CASE_ID_LENGTH}}})(?![0-9A-Za-z])")
"""A case id written in text: `C-` + 10 base32 characters, e.g. `[#C-AB2CD3EF4G]`."""


def case_references(*texts: str | None) -> list[str]:
    """Every case id quoted in the texts, in order of appearance, without repeats."""
    found: list[str] = []
    for text in texts:
        for match in CASE_REFERENCE.finditer(text or ""):
            case_id = "C-" + match.group(1)
            if case_id not in found:
                found.append(case_id)
    return found


def case_id_for(customer_id: str, first_message_key: str) -> str:
    """The id of the case opened for a customer by a message: `C-` + 10 base32 characters."""
    # 10 bytes make 16 characters, of which the first 10 are those of the whole digest
    encoded = base64.b32encode(_digest("case", customer_id, first_message_key)[:10])
    return "C-" + encoded[:CASE_ID_LENGTH].decode("ascii")


def successor_case_id(customer_id: str, case_id: str) -> str:
    """The case a customer's message opens when `case_id` cannot take it (closed or unknown).

    Deterministic, so every later message sent towards `case_id` joins the same successor.
    """
    return case_id_for(customer_id, f"successor-of:{case_id}")


def thread_case_id(channel: str, thread_ref: str) -> str:
    """The case of a public thread (a forum topic): every post in the thread belongs to it."""
    return case_id_for(f"thread:{channel}", thread_ref)


def event_id_for(case_id: str, event_type: str, *discriminators: str) -> str:
    """A stable event id (32 hex characters) from the case, the type and what makes it unique."""
    return _digest("event", case_id, event_type, *discriminators)[:16].hex()


def customer_id_for_handle(channel: str, handle: str) -> str:
    """A customer id for a sender known only by a channel handle."""
    return "H-" + _digest("handle", channel, handle.strip().lower())[:10].hex()
