"""What the demo reads back from the case log (the projection's `case_events` table).

The escalations, pages and acknowledgements of a run, as the stream recorded them on
`cases.events`: the tally counts them, and the demo agents find the cases a page waits on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from queues import make_engine
from queues.models import CaseEventRow
from schemas import CaseEventType

_WATCHED = (
    CaseEventType.CASE_ESCALATED.value,
    CaseEventType.CASE_ACKNOWLEDGED_BY_AGENT.value,
    CaseEventType.CASE_PAGES_RESOLVED.value,
    CaseEventType.CASE_RESOLVED.value,
)


@dataclass
class PagingLog:
    """Counts of the run's escalations and pages, and the cases waiting on a page."""

    agent_escalations: int = 0
    pages_sent: int = 0
    pages_acknowledged: int = 0
    paging_cases: set[str] = field(default_factory=set)
    """Cases whose latest paging event is a page (no acknowledgement or resolution since)."""


def is_page(payload: dict[str, Any]) -> bool:
    """Whether a `case.escalated` payload is an on-call page (`escalation.page`)."""
    escalation = payload.get("escalation")
    return isinstance(escalation, dict) and bool(escalation.get("page"))


def read_paging_log(database_url: str) -> PagingLog:
    """The run's escalations and pages so far (empty before the projection made its schema)."""
    log = PagingLog()
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(CaseEventRow.case_id, CaseEventRow.type, CaseEventRow.payload)
                .where(CaseEventRow.type.in_(_WATCHED))
                .order_by(CaseEventRow.at)
            ).all()
    except SQLAlchemyError:
        return log  # the projection has not created the schema yet
    finally:
        with contextlib.suppress(SQLAlchemyError):
            engine.dispose()
    for case_id, kind, payload in rows:
        if kind == CaseEventType.CASE_ESCALATED.value:
            if is_page(payload or {}):
                log.pages_sent += 1
                log.paging_cases.add(case_id)
            elif (payload or {}).get("agent"):
                log.agent_escalations += 1
            continue
        if kind == CaseEventType.CASE_ACKNOWLEDGED_BY_AGENT.value:
            log.pages_acknowledged += 1
        log.paging_cases.discard(case_id)
    return log
