"""Applies a batch of records in ONE database transaction and counts what happened.

If the batch transaction fails for a reason other than a transient database problem,
the records are retried one per transaction, so one poisonous event is skipped (and
counted) instead of blocking every event behind it. Transient problems (the database
is down or locked) propagate as `TransientDatabaseError` for the caller to retry the
whole batch: events already committed are then skipped as duplicates.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.orm import Session, sessionmaker

from queues.apply import Applied, EventApplier, Outcome, SourceRecord
from queues.metrics import ErrorReason, ProjectionMetrics

log = logging.getLogger(__name__)


class TransientDatabaseError(Exception):
    """The database could not be reached or was busy; the batch was not applied."""


@dataclass
class BatchResult:
    """How many records of a batch ended in each outcome."""

    outcomes: Counter[Outcome] = field(default_factory=Counter)
    refused: list[tuple[SourceRecord, Applied]] = field(default_factory=list)
    """Records not applied (malformed, invalid payload, failed), with why: dead-letter them."""

    @property
    def records(self) -> int:
        """Records in the batch."""
        return sum(self.outcomes.values())


TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "42P01", "53", "55P03", "57P")
"""SQLSTATE codes (and classes, by prefix) that a later retry can cure, from PostgreSQL:
connection exceptions, serialization failures and deadlocks, a table that does not exist
yet (the store is not migrated: SQLite reports that as an OperationalError), insufficient
resources, a lock not available, and a server shutting down or starting."""


def is_transient(error: BaseException) -> bool:
    """Whether a database error may pass by itself (retry) rather than come from the data."""
    return _is_transient(error)


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, OperationalError | InterfaceError | DisconnectionError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(TRANSIENT_SQLSTATES):
        return True
    return error.connection_invalidated


_REFUSED = frozenset({Outcome.MALFORMED, Outcome.INVALID_PAYLOAD, Outcome.FAILED})
"""Outcomes of records that did not change the store as they should: each is dead-lettered."""


class BatchWriter:
    """Writes batches of case event records into the case store."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        metrics: ProjectionMetrics,
        applier: EventApplier | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._metrics = metrics
        self._applier = applier or EventApplier()

    def write(self, records: Sequence[SourceRecord]) -> BatchResult:
        """Apply `records` in order and commit; raise `TransientDatabaseError` to be retried."""
        started = time.perf_counter()
        try:
            results = self._in_one_transaction(records)
        except Exception as error:
            if _is_transient(error):
                self._metrics.errors.labels(ErrorReason.DATABASE.value).inc()
                raise TransientDatabaseError(str(error)) from error
            log.warning(
                "batch of %d records failed (%s); retrying one record per transaction",
                len(records),
                type(error).__name__,
            )
            results = self._one_per_transaction(records)
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        return self._count(records, results)

    def _in_one_transaction(self, records: Sequence[SourceRecord]) -> list[Applied]:
        with self._session_factory.begin() as session:
            return self._applier.apply_batch(session, records)

    def _one_per_transaction(self, records: Sequence[SourceRecord]) -> list[Applied]:
        return [self._alone(record) for record in records]

    def _alone(self, record: SourceRecord) -> Applied:
        """Apply one record in its own transaction; FAILED if it cannot be applied."""
        retry_on_conflict = True
        while True:
            try:
                return self._in_one_transaction([record])[0]
            except Exception as error:
                if _is_transient(error):
                    self._metrics.errors.labels(ErrorReason.DATABASE.value).inc()
                    raise TransientDatabaseError(str(error)) from error
                if retry_on_conflict and isinstance(error, IntegrityError):
                    # Another writer (e.g. during a rebalance) may have recorded the same
                    # event meanwhile: a second attempt then sees it as a duplicate.
                    retry_on_conflict = False
                    continue
                log.exception(
                    "skipping record at partition %s offset %s: it cannot be applied",
                    record.partition,
                    record.offset,
                )
                return Applied(Outcome.FAILED, detail=f"{type(error).__name__}: {error}")

    def _count(self, records: Sequence[SourceRecord], results: Sequence[Applied]) -> BatchResult:
        """Count outcomes only after the commit, so the metrics match the store.

        Counters move once per label and batch, not once per record.
        """
        result = BatchResult()
        recorded: Counter[str] = Counter()
        errors: Counter[ErrorReason] = Counter()
        for record, applied in zip(records, results, strict=True):
            result.outcomes[applied.outcome] += 1
            if applied.outcome in _REFUSED:
                result.refused.append((record, applied))
            match applied.outcome:
                case Outcome.APPLIED | Outcome.RECORDED:
                    recorded[applied.event_type or "unknown"] += 1
                    for sample in applied.samples:
                        self._metrics.observe(sample)
                case Outcome.INVALID_PAYLOAD:
                    recorded[applied.event_type or "unknown"] += 1
                    errors[ErrorReason.INVALID_PAYLOAD] += 1
                case Outcome.MALFORMED:
                    errors[ErrorReason.MALFORMED] += 1
                case Outcome.FAILED:
                    errors[ErrorReason.APPLY_FAILED] += 1
        for event_type, count in recorded.items():
            self._metrics.events.labels(event_type).inc(count)
        for reason, count in errors.items():
            self._metrics.errors.labels(reason.value).inc(count)
        if result.outcomes[Outcome.DUPLICATE]:
            self._metrics.duplicates.inc(result.outcomes[Outcome.DUPLICATE])
        return result
