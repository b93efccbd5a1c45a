"""Stage state across rebalances.

The changelog stores, restoring assigned partitions and releasing revoked ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from kafkaio.fencing import FencedWriter
from metricsio.gc_tuning import freeze_long_lived
from metricsio.malloc_release import release_free_memory
from streams.case_state import state_dictionary
from streams.deadlines import DeadlineIndex
from streams.pipeline import Pipeline
from streams.positions import source_positions
from streams.state_store import ChangelogState, Deadlines, StateCodec
from streams.worker_config import WorkerConfig

log = logging.getLogger(__name__)


def case_store(config: WorkerConfig) -> ChangelogState:
    """Stage C's state: cases held compressed, next deadlines in the changelog headers."""
    return ChangelogState(
        "cases",
        config.topics.state_changelog("cases"),
        config.topics.threaded,
        config.connection,
        codec=StateCodec(state_dictionary()),
        deadline_field="next_deadline",
        fencing=fenced_writer(config, config.topics.state_changelog("cases")),
    )


def customer_store(config: WorkerConfig) -> ChangelogState:
    """Stage B's state: each customer's recent message keys and open cases."""
    topics = config.topics
    return ChangelogState(
        "customers",
        topics.state_changelog("customers"),
        topics.resolved,
        config.connection,
        fencing=fenced_writer(config, topics.state_changelog("customers")),
    )


def fenced_writer(config: WorkerConfig, changelog_topic: str) -> FencedWriter:
    """Transactional writes of one changelog, under ids unique to the app and the topic."""
    return FencedWriter(config.connection, f"{config.app_id}.{changelog_topic}")


def rebuild_deadlines(deadlines: DeadlineIndex, held: frozenset[int], restored: Deadlines) -> None:
    """After an assignment: forget partitions no longer held, index the restored ones."""
    deadlines.keep_only(held)
    for partition, entries in restored.items():
        deadlines.replace_partition(partition, entries)


RESTORE_WAIT_SECONDS = 300.0
"""Longest a batch waits for its partitions' assignment and restore before the worker fails."""

_READY_POLL_SECONDS = 0.02


async def restored_then(
    store: ChangelogState,
    events: Sequence[Any],
    batch: Callable[[Sequence[Any]], Awaitable[None]],
    current: Callable[[Sequence[Any]], list[Any]] = list,
) -> list[Any]:
    """Run a stateful batch once every partition in it is assigned and its state restored.

    faust resumes streams without waiting for the assignment handler that restores state,
    so each batch checks for itself (`ChangelogState.ready`). It waits on the event loop,
    not in a thread, so a worker stopping meanwhile cancels the wait. While it waits,
    `current` (the stages' generation filter) sets aside what a new rebalance made stale:
    a batch of the previous generation never waits for a partition that went elsewhere.
    Returns the events the batch ran with.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + RESTORE_WAIT_SECONDS
    while True:
        events = current(events)
        partitions = {event.message.partition for event in events}
        if store.ready(partitions):
            break
        if loop.time() > give_up:
            raise TimeoutError(f"{store.name}: state of {sorted(partitions)} not restored")
        await asyncio.sleep(_READY_POLL_SECONDS)
    await batch(events)
    return events


async def assign_partitions(
    pipeline: Pipeline, config: WorkerConfig, assigned: Iterable[Any]
) -> None:
    """A rebalance assigned these topic partitions: stage C's offsets, then the states.

    Runs during the rebalance; the stages still wait for their state themselves
    (`restored_then`). Stage C's starting offsets are read first, because its batches
    wait for the state and not for them. Once restored, what is held is frozen out of the
    garbage collector's later walks (`metricsio.gc_tuning`), and the pages the restore freed
    go back to the system (`metricsio.malloc_release`).
    """
    assigned = list(assigned)
    loop = asyncio.get_running_loop()
    cases, customers = pipeline.cases, pipeline.customers

    def partitions(store: ChangelogState) -> set[int]:
        return {tp.partition for tp in assigned if tp.topic == store.source_topic}

    wanted = partitions(cases)
    event_time = pipeline.event_time
    if event_time is not None:
        sources = [(topic, p) for topic in event_time.topics for p in wanted]
        positions = await loop.run_in_executor(
            None, source_positions, config.connection, config.app_id, sources
        )
        event_time.keep_only(wanted)
        event_time.assign(positions)
        log.info(
            "stage C replays %s before the SLA timer fires them",
            {f"{t}[{p}]": o.end_offset - o.next_offset for (t, p), o in positions.items()},
        )
    # between batches: a batch never sees its partitions' state replaced halfway through
    async with pipeline.customer_lock:
        await loop.run_in_executor(None, customers.assign, partitions(customers))
    async with pipeline.case_lock:
        restored = await loop.run_in_executor(None, cases.assign, wanted)
        rebuild_deadlines(pipeline.deadlines, cases.partitions, restored)
    freeze_long_lived()  # the restored states and deadlines live long: out of later collections
    release_free_memory()  # the restore's transient pages back to the system (glibc)
    pipeline.partitions_assigned(cases.partitions)
    pipeline.progress.restart_waits()  # a long restore is not a stall of the new partitions


async def release_partitions(pipeline: Pipeline, revoked: Iterable[Any]) -> None:
    """A rebalance revokes these topic partitions: stop timing them, note their changelogs.

    Waits for a burst the timer is writing; then nothing of these partitions fires. Their
    states stay, kept on return only if nobody wrote their changelog meanwhile.
    """
    revoked = list(revoked)
    case_topics = (pipeline.topics.threaded, pipeline.topics.agent_actions)
    await pipeline.partitions_revoked({tp.partition for tp in revoked if tp.topic in case_topics})
    loop = asyncio.get_running_loop()
    for store in (pipeline.cases, pipeline.customers):
        gone = {tp.partition for tp in revoked if tp.topic == store.source_topic}
        await loop.run_in_executor(None, store.release, gone)
