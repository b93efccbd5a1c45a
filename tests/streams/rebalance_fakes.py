"""A pipeline of fakes for the worker's assignment and revocation (`streams.rebalance`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, NamedTuple

from streams.deadlines import DeadlineIndex


class TP(NamedTuple):
    """A topic partition, as faust hands them to the rebalance handlers."""

    topic: str
    partition: int


def fake_pipeline(
    cases: Any, customers: Any, partitions_assigned: Callable[[frozenset[int]], object]
) -> SimpleNamespace:
    """What `assign_partitions` and `release_partitions` use of a pipeline: the two stores,
    their locks, the deadline index, the timer's `partitions_assigned`, and no-op progress."""
    return SimpleNamespace(
        cases=cases,
        customers=customers,
        event_time=None,
        customer_lock=asyncio.Lock(),
        case_lock=asyncio.Lock(),
        deadlines=DeadlineIndex(),
        partitions_assigned=partitions_assigned,
        partitions_revoked=lambda partitions: asyncio.sleep(0),
        progress=SimpleNamespace(
            restart_waits=lambda: None,
            restoring=lambda tps: None,
            restored=lambda tps: None,
        ),
        topics=SimpleNamespace(threaded="threaded", agent_actions="actions", resolved="resolved"),
    )
