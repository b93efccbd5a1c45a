"""Records fetched before the consumer's latest rebalance: set aside, to be fetched again.

`take_events` buffers records, and a rebalance may complete while they wait in the buffer
or while the batch before them awaits its writes. After an (eager) rebalance the consumer
fetches every assigned partition again from the group's committed offset, so a record of
an older generation comes again. Processing it now could run it against a state that the
assignment has since replaced (restored from another owner's writes). Acknowledging it
would be worse: faust forgets a revoked partition's committed offset, so an
acknowledgement after the rebalance is taken at face value, and the commit could skip
records of the partition that were never processed. The chaos harness lost messages that
way. Such a record is therefore neither processed nor acknowledged; faust's own stream
skips records of older generations the same way when they arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["current_events", "set_aside"]

log = logging.getLogger(__name__)


def current_events(events: Iterable[Any], generation: int | None) -> list[Any]:
    """The events fetched in this consumer generation; the others are set aside.

    `generation` None (no consumer: tests, tools) keeps every event, and so does an event
    whose message carries no generation.
    """
    kept = list(events)
    if generation is None:
        return kept
    fresh: list[Any] = []
    for event in kept:
        fetched_in = getattr(event.message, "generation_id", None)
        if fetched_in is None or fetched_in == generation:
            fresh.append(event)
        else:
            set_aside(event.message)
    if len(fresh) < len(kept):
        log.info(
            "set aside %d records fetched before rebalance %d: they are fetched again",
            len(kept) - len(fresh),
            generation,
        )
    return fresh


def set_aside(message: Any) -> None:
    """Never acknowledge this record: faust neither commits its offset nor waits for it.

    faust's `Message.ack` does nothing for a message already marked acknowledged, and its
    consumer drops such messages from the set it waits on before a rebalance.
    """
    message.acked = True
