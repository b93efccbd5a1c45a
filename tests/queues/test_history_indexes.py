"""A customer's history is read through indexes on both dialects, never by scanning a table:
SQLite's query plan searches every table it reads, and PostgreSQL, with sequential scans
priced out, still finds an index for each (a missing index would leave a `Seq Scan`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session, sessionmaker

from queues import BatchWriter, ProjectionMetrics, SourceRecord
from queues.history import Position, case_places, event_query, message_query
from queues.models import CaseResolutionRow, CaseRow, CustomerMergeRow
from tests.queues.case_event_builders import to_bytes
from tests.queues.effort_builders import Story

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
TABLES = ("messages", "case_events", "cases", "customer_merges", "case_resolutions")


def fill(sessions: sessionmaker[Session]) -> None:
    """Forty customers with two cases each, so the planner has rows to weigh."""
    from prometheus_client import CollectorRegistry

    events = []
    for n in range(40):
        first = Story(f"cust-{n}").opens(T0, channel="sms").replies(T0 + timedelta(hours=1))
        first.resolves(T0 + timedelta(hours=2))
        events += first.events
        events += Story(f"cust-{n}", number=2).opens(T0 + timedelta(days=2)).events
    writer = BatchWriter(sessions, ProjectionMetrics(CollectorRegistry()))
    writer.write([SourceRecord(to_bytes(e), partition=0, offset=i) for i, e in enumerate(events)])


def plan(engine: Engine, query: Select[Any]) -> str:
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            params = tuple(compiled.params[name] for name in compiled.positiontup or ())
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
            return "\n".join(str(row[-1]) for row in rows)
        connection.exec_driver_sql("ANALYZE")
        connection.exec_driver_sql("SET enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        return "\n".join(str(row[0]) for row in rows)


def scans(text: str) -> list[str]:
    """Lines of a plan that read a whole store table."""
    found = []
    for line in text.splitlines():
        for table in TABLES:
            if f"SCAN {table}" in line and "USING" not in line:  # SQLite
                found.append(line)
            if f"Seq Scan on {table}" in line:  # PostgreSQL
                found.append(line)
    return found


def test_every_history_query_uses_an_index(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    fill(session_factory)
    customers = ["cust-3", "cust-7"]
    after = Position(T0 + timedelta(hours=1), 0, "C-AAAAAAAA", "sms:x")
    queries: dict[str, Select[Any]] = {
        "messages": message_query(customers, None, 51),
        "messages after a cursor": message_query(customers, after, 51),
        "events": event_query(customers, None, 51),
        "events after a cursor": event_query(customers, after, 51),
        "merged into": select(CustomerMergeRow.customer_id).where(
            CustomerMergeRow.merged_into.in_(customers)
        ),
        "merge of": select(CustomerMergeRow).where(CustomerMergeRow.customer_id == "cust-3"),
        "repeat lookup": select(CaseResolutionRow).where(
            CaseResolutionRow.customer_id == "cust-3",
            CaseResolutionRow.resolved_at < T0,
            CaseResolutionRow.repeat_until >= T0,
        ),
        "settlement": select(CaseResolutionRow).where(
            CaseResolutionRow.settled.is_(False), CaseResolutionRow.settles_at <= T0
        ),
        "came back": select(CaseRow.case_id).where(
            CaseRow.customer_id == "cust-3", CaseRow.opened_at > T0
        ),
    }
    found = {name: scans(plan(engine, query)) for name, query in queries.items()}
    assert {name: lines for name, lines in found.items() if lines} == {}
    with session_factory() as session:
        assert case_places(session, customers) == [("general", None)]
