"""Operators' merges and splits reach the case store: `customers.identity` → `customer_merges`.

The identity topic is compacted and holds the latest decision per key, so, like the
worker's identity watcher, this reads it whole from the beginning at start-up
(`kafkaio.follower.TopicFollower`) and then follows it. Applying a record is idempotent (a
merge writes its row, a split deletes it, a handle link changes nothing here), so reading
the topic again after a restart ends in the same rows. A database that is away is waited
for: a merge is never skipped because the store was down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from sqlalchemy import Table, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from kafkaio.follower import OnPoison, TopicFollower
from queues.models import CustomerMergeRow
from queues.writer import is_transient
from schemas import IdentityKind, IdentityRecord

log = logging.getLogger(__name__)

_RETRY_SECONDS = 1.0


def apply_identity(session: Session, record: IdentityRecord) -> bool:
    """Apply one decision; True when it was a merge or a split (a link changes nothing here).

    Written as an upsert and a delete, so projections applying the same decision at once
    (replicas each read the whole topic) neither collide nor differ.
    """
    table = Table("customer_merges", CustomerMergeRow.metadata)
    if record.kind is IdentityKind.MERGE and record.merged_into:
        values = {
            "merged_into": record.merged_into,
            "reason": record.reason,
            "by": record.by[:128],
            "at": record.at,
        }
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(table).values(customer_id=record.customer_id, **values)
        session.execute(
            statement.on_conflict_do_update(index_elements=["customer_id"], set_=values)
        )
        return True
    if record.kind is IdentityKind.SPLIT:
        session.execute(delete(table).where(table.c.customer_id == record.customer_id))
        return True
    return False


class IdentityProjection:
    """Follows the identity topic into `customer_merges`: `catch_up` once, then `start`."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        topic: str,
        session_factory: sessionmaker[Session],
        on_poison: OnPoison | None = None,
    ) -> None:
        self._sessions = session_factory
        self._follower = TopicFollower(connection, topic, "identity-projection", on_poison)
        self._stopping = threading.Event()

    def catch_up(self, timeout_seconds: float = 10.0) -> int:
        """Read the topic to its end; how many merges and splits were applied."""
        return self._follower.read_to_end(self._accept, timeout_seconds)

    def start(self) -> None:
        """Follow new decisions in a background thread."""
        self._follower.start(self._accept)

    def stop(self) -> None:
        """Stop following and close the consumer."""
        self._stopping.set()
        self._follower.stop()

    def _accept(self, raw: bytes) -> bool:
        """Apply one record; an invalid one raises (the follower dead-letters it)."""
        record = IdentityRecord.model_validate_json(raw)
        if record.kind is IdentityKind.LINK:
            return False
        while True:
            try:
                with self._sessions.begin() as session:
                    return apply_identity(session, record)
            except Exception as error:
                if not is_transient(error) or self._stopping.is_set():
                    raise
                log.error("case store unavailable, retrying an identity decision: %s", error)
                self._stopping.wait(_RETRY_SECONDS)
