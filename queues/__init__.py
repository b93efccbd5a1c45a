"""Agent queues: the SQLAlchemy case store (a projection of case events), assignment, desk API.

The composition root passes configuration in as plain parameters: a database URL,
the librdkafka connection settings and the events topic name.
"""

from queues.apply import Applied, EventApplier, Outcome, SourceRecord
from queues.engine import make_engine, make_session_factory
from queues.metrics import ErrorReason, ProjectionMetrics
from queues.migrate import current_revision, downgrade, head_revision, upgrade, upgrade_sql
from queues.projection import DEFAULT_GROUP_ID, Projection
from queues.rebuild import RebuildReport, StoreNotEmptyError, rebuild
from queues.store import (
    CaseDetail,
    CaseStore,
    CaseSummary,
    EventView,
    MessageView,
    StoreNotInitialisedError,
)
from queues.writer import BatchResult, BatchWriter, TransientDatabaseError

__all__ = [
    "DEFAULT_GROUP_ID",
    "Applied",
    "BatchResult",
    "BatchWriter",
    "CaseDetail",
    "CaseStore",
    "CaseSummary",
    "ErrorReason",
    "EventApplier",
    "EventView",
    "MessageView",
    "Outcome",
    "Projection",
    "ProjectionMetrics",
    "RebuildReport",
    "SourceRecord",
    "StoreNotEmptyError",
    "StoreNotInitialisedError",
    "TransientDatabaseError",
    "current_revision",
    "downgrade",
    "head_revision",
    "make_engine",
    "make_session_factory",
    "rebuild",
    "upgrade",
    "upgrade_sql",
]
