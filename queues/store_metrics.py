"""Gauges computed from the case store at scrape time, so they are exact across restarts.

- `escalator_cases_open{queue,priority}`: cases not resolved;
- `escalator_cases_at_risk{queue,clock}`: running SLA clocks inside their warning window
  (warned, not yet breached);
- `escalator_cases_breached{queue,clock}`: open cases whose clock passed its due time unmet
  (for a response clock: a customer unanswered past the SLA);
- `escalator_oldest_unanswered_message_age_seconds{queue}`: the floor: age of the oldest
  customer message of an open case with no agent reply after it (0 when all are answered).

Every query reads committed rows only; a scrape that cannot reach the database yields the
families without samples (and `/readyz` says the database is unreachable).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from queues.models import CaseEventRow, CaseRow, MessageRow, QueueRow
from schemas import CLOCK_NAMES, CaseStatus, ClockState

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

SLA_CLOCKS = CLOCK_NAMES
"""The clock names a case's `sla` field can hold: the clock table's (`schemas.SLA_CLOCKS`)."""


def _now() -> datetime:
    return datetime.now(UTC)


class CaseStoreCollector(Collector):
    """Reads open cases, cases at risk and the unanswered floor from the case store."""

    def __init__(self, session_factory: sessionmaker[Session], clock: Clock = _now) -> None:
        self._session_factory = session_factory
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        """Query the store now and yield the three gauge families."""
        open_cases = GaugeMetricFamily(
            "escalator_cases_open",
            "Cases not resolved, by queue and priority (from the case store).",
            labels=["queue", "priority"],
        )
        at_risk = GaugeMetricFamily(
            "escalator_cases_at_risk",
            "SLA clocks of open cases inside their warning window (warned, not breached), "
            "by queue and clock.",
            labels=["queue", "clock"],
        )
        breached = GaugeMetricFamily(
            "escalator_cases_breached",
            "SLA clocks of open cases past their due time and not met, by queue and clock.",
            labels=["queue", "clock"],
        )
        floor = GaugeMetricFamily(
            "escalator_oldest_unanswered_message_age_seconds",
            "Age of the oldest customer message of an open case with no agent reply after it, "
            "by queue; 0 when every message is answered.",
            labels=["queue"],
        )
        try:
            with self._session_factory() as session:
                for (queue, priority), count in sorted(open_by_queue(session).items()):
                    open_cases.add_metric([queue, priority], count)
                states = clock_states_by_queue(session)
                for (queue, clock), count in sorted(states[ClockState.WARNING].items()):
                    at_risk.add_metric([queue, clock], count)
                for (queue, clock), count in sorted(states[ClockState.BREACHED].items()):
                    breached.add_metric([queue, clock], count)
                now = self._clock()
                for queue, oldest in sorted(oldest_unanswered_by_queue(session).items()):
                    age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
                    floor.add_metric([queue], age)
        except SQLAlchemyError as error:
            log.warning("case store metrics unavailable: %s", error)
        yield open_cases
        yield at_risk
        yield breached
        yield floor


def _open() -> ColumnElement[bool]:
    return and_(CaseRow.status != CaseStatus.RESOLVED.value, CaseRow.queue.is_not(None))


def open_by_queue(session: Session) -> dict[tuple[str, str], int]:
    """Open (not resolved) routed cases counted by (queue, priority)."""
    rows = session.execute(
        select(CaseRow.queue, CaseRow.priority, func.count())
        .where(_open())
        .group_by(CaseRow.queue, CaseRow.priority)
    )
    return {(str(queue), str(priority or "")): int(count) for queue, priority, count in rows}


def clock_states_by_queue(session: Session) -> dict[ClockState, Counter[tuple[str, str]]]:
    """Clocks of open cases in state `warning` and `breached`, counted by (queue, clock).

    Every (queue, clock) pair that an open case has gets a count, zero included, so a
    dashboard shows 0 rather than no data. The database groups the JSON states itself
    (one query per clock name), so a scrape does not read every case into Python.
    """
    counted = {ClockState.WARNING: Counter[tuple[str, str]](), ClockState.BREACHED: Counter()}
    for clock in SLA_CLOCKS:
        state = CaseRow.sla[clock]["state"].as_string()
        rows = session.execute(
            select(CaseRow.queue, state, func.count())
            .where(_open(), state.is_not(None))
            .group_by(CaseRow.queue, state)
        )
        for queue, value, count in rows:
            pair = (str(queue), clock)
            for wanted, counter in counted.items():
                counter[pair] += int(count) if value == wanted.value else 0
    return counted


def oldest_unanswered_by_queue(session: Session) -> dict[str, datetime | None]:
    """Per known queue, when the oldest unanswered customer message arrived (None: none).

    Arrival is the time of the event that recorded the message (the Kafka timestamp at
    ingest), not the `sent_at` the channel claims, which may be old or wrong.
    """
    reply = aliased(MessageRow)
    reply_event = aliased(CaseEventRow)
    answered = exists().where(
        reply.case_id == MessageRow.case_id,
        reply.direction == "outbound",
        reply.event_id == reply_event.event_id,
        reply_event.at >= CaseEventRow.at,
    )
    rows = session.execute(
        select(CaseRow.queue, func.min(CaseEventRow.at))
        .join(MessageRow, MessageRow.case_id == CaseRow.case_id)
        .join(CaseEventRow, CaseEventRow.event_id == MessageRow.event_id)
        .where(_open(), MessageRow.direction == "inbound", ~answered)
        .group_by(CaseRow.queue)
    )
    oldest: dict[str, datetime | None] = dict.fromkeys(session.scalars(select(QueueRow.name)))
    for queue, arrived_at in rows:
        oldest[str(queue)] = _aware(arrived_at)
    return oldest


def _aware(value: datetime | str | None) -> datetime | None:
    """SQLite hands back MIN() of a timestamp column as text; PostgreSQL as a datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
