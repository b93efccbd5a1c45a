"""Rebuild the case store from scratch by replaying `cases.events` from the beginning.

Agents' presence is replayed from `agents.presence` as well (when its topic is given).

The replay uses a fresh consumer group, stops at the end offsets seen when it started,
and deletes its group afterwards. Stop the running projection first: its group keeps
its own offsets, and whatever it reads after restarting that the rebuild already
applied is skipped as a duplicate.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from sqlalchemy import Engine, delete, update

from kafkaio import clients
from queues import migrate
from queues.effort import EffortPolicy
from queues.engine import make_engine, make_session_factory
from queues.metrics import ProjectionMetrics
from queues.models import (
    AgentRow,
    AssignmentRow,
    CaseEventRow,
    CaseResolutionRow,
    CaseRow,
    EffortCounterRow,
    MessageRow,
)
from queues.presence_projection import PresenceProjection
from queues.projection import Projection
from queues.store import CaseStore, redacted_url
from queues.writer import BatchResult

log = logging.getLogger(__name__)

REBUILD_GROUP_PREFIX = "escalator-rebuild-"

PROJECTED_ROWS = (
    EffortCounterRow,
    CaseResolutionRow,
    AssignmentRow,
    CaseEventRow,
    MessageRow,
    CaseRow,
)
"""Tables made only from `cases.events`, children first: what a rebuild empties."""


class StoreNotEmptyError(Exception):
    """The target database already holds cases and `force` was not given."""


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild read and what the store holds afterwards."""

    records: int
    cases: int
    outcomes: BatchResult
    group_id: str


def rebuild(
    *,
    database_url: str,
    kafka_config: Mapping[str, Any],
    topic: str,
    force: bool = False,
    timeout_seconds: float = 600.0,
    metrics: ProjectionMetrics | None = None,
    batch_size: int = 1000,
    presence_topic: str | None = None,
    effort: EffortPolicy | None = None,
) -> RebuildReport:
    """Empty (or create) the store at `database_url`, migrate it, and replay `topic` into it.

    With `presence_topic`, every agent's presence is reset to offline and then replayed
    from that topic too, so presence is what the stream says, as the cases are.

    Raises `StoreNotEmptyError` if the store holds cases and `force` is false, and
    `TimeoutError` if the replay does not reach the end offsets in time.
    """
    _empty_store(database_url, force=force)
    migrate.upgrade(database_url)
    group_id = f"{REBUILD_GROUP_PREFIX}{uuid.uuid4().hex[:12]}"
    engine = make_engine(database_url)
    try:
        with Projection(
            kafka_config=kafka_config,
            topic=topic,
            session_factory=make_session_factory(engine),
            group_id=group_id,
            metrics=metrics,
            batch_size=batch_size,
            effort=effort,
        ) as projection:
            records = projection.catch_up(timeout_seconds)
            outcomes = projection.totals
        if presence_topic is not None:
            records += _replay_presence(engine, kafka_config, presence_topic, timeout_seconds)
        cases = CaseStore(engine).count_cases()
    finally:
        engine.dispose()
    _delete_group(kafka_config, group_id)
    return RebuildReport(records=records, cases=cases, outcomes=outcomes, group_id=group_id)


def _replay_presence(
    engine: Engine, kafka_config: Mapping[str, Any], topic: str, timeout_seconds: float
) -> int:
    """Reset every agent to offline, then apply the presence topic from its start."""
    with engine.begin() as connection:
        connection.execute(update(AgentRow).values(presence="offline", presence_id=None))
    group_id = f"{REBUILD_GROUP_PREFIX}presence-{uuid.uuid4().hex[:12]}"
    projection = PresenceProjection(
        kafka_config=kafka_config,
        topic=topic,
        session_factory=make_session_factory(engine),
        group_id=group_id,
    )
    try:
        return projection.catch_up(timeout_seconds)
    finally:
        projection.stop()
        _delete_group(kafka_config, group_id)


def _empty_store(database_url: str, *, force: bool) -> None:
    """Delete the projected rows if there are any, refusing to drop cases unless forced.

    Desk configuration (agents, their queue memberships, queue settings) is not projected
    from the topic, so it is kept.
    """
    engine = make_engine(database_url)
    try:
        if migrate.current_revision(engine) is None:
            return
        cases = CaseStore(engine).count_cases()
    finally:
        engine.dispose()
    if cases and not force:
        raise StoreNotEmptyError(
            f"the case store at {redacted_url(database_url)} holds {cases} cases; "
            "use --force to replace them"
        )
    log.info("emptying the case store at %s", redacted_url(database_url))
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            for row in PROJECTED_ROWS:
                connection.execute(delete(row))
    finally:
        engine.dispose()


def _delete_group(kafka_config: Mapping[str, Any], group_id: str) -> None:
    """Best effort: a leftover group only costs the broker a few committed offsets."""
    admin = clients.admin(kafka_config)
    try:
        for future in admin.delete_consumer_groups([group_id], request_timeout=10).values():
            future.result(timeout=15)
    except (KafkaException, TimeoutError) as error:
        log.warning("could not delete the rebuild's consumer group %s: %s", group_id, error)
