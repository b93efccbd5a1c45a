"""Prometheus metrics of identity resolution and threading across channels."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from schemas import channel_label
from streams.threader import NotThreaded

log = logging.getLogger(__name__)

IDENTITY_LINKS = Counter(
    "escalator_identity_links",
    "Handles linked to a customer on verified evidence, by the channel of the message.",
    ["channel"],
)
MESSAGES_NOT_THREADED = Counter(
    "escalator_messages_not_threaded",
    "Messages that joined no case, by channel and reason (auto_reply_without_case, "
    "case_unknown, no_successor); duplicates are counted in escalator_messages_duplicate.",
    ["channel", "reason"],
)
MESSAGES_MOVED = Counter(
    "escalator_messages_moved_to_successor",
    "Messages sent towards a case that could not take them (resolved past the reopen window, "
    "unknown), moved to its successor case.",
    ["channel"],
)


def not_threaded(channel: str, decision: NotThreaded) -> None:
    """Count and log a message that joins no case (the log line keeps its key and reason)."""
    MESSAGES_NOT_THREADED.labels(channel_label(channel), decision.reason).inc()
    log.info("message not threaded (%s): %s", decision.reason, decision.detail)
