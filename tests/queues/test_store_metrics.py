"""Case store gauges (open, at risk, breached, the unanswered floor) and the SLO histograms."""

from __future__ import annotations

import copy
from datetime import timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics
from sqlalchemy.orm import Session, sessionmaker

from queues import ProjectionMetrics
from queues.apply import SourceRecord
from queues.store_metrics import CaseStoreCollector
from queues.writer import BatchWriter
from schemas import CaseEvent, Priority
from schemas.ids import event_id_for
from tests.queues.case_event_builders import T0, appended, case_id, opened, routed, sample, to_bytes

NOW = T0 + timedelta(hours=1)


def with_clock_state(event: CaseEvent, clock: str, state: str) -> CaseEvent:
    """A `case.routed` event whose case shows `clock` in `state`."""
    payload = copy.deepcopy(event.payload)
    payload["case"]["sla"][clock] = {"due_at": None, "state": state}
    return event.model_copy(update={"payload": payload})


def agent_reply(customer_id: str, minutes: int) -> CaseEvent:
    """`message.appended` of an agent reply `minutes` after T0."""
    event = appended(customer_id, 90 + minutes, message_key=f"agent:{customer_id}-{minutes}")
    payload = copy.deepcopy(event.payload)
    payload["message"]["direction"] = "outbound"
    at = T0 + timedelta(minutes=minutes)
    payload["message"]["sent_at"] = at.isoformat()
    return event.model_copy(update={"payload": payload, "at": at})


def clock_event(customer_id: str, kind: str, minutes: int, **payload: object) -> CaseEvent:
    """An SLA or status event of the customer's case, `minutes` after T0."""
    cid = case_id(customer_id)
    return CaseEvent(
        event_id=event_id_for(cid, kind, str(minutes)),
        case_id=cid,
        type=kind,
        at=T0 + timedelta(minutes=minutes),
        reason="test",
        payload=dict(payload),
    )


def resolved(customer_id: str, minutes: int) -> list[CaseEvent]:
    """`case.resolved` and the snapshot that records the resolved status."""
    snapshot = routed(customer_id, at=T0 + timedelta(minutes=minutes), routing="resolved")
    payload = copy.deepcopy(snapshot.payload)
    payload["case"]["status"] = "resolved"
    return [
        clock_event(customer_id, "case.resolved", minutes),
        snapshot.model_copy(update={"payload": payload, "type": "case.updated"}),
    ]


def store(session_factory: sessionmaker[Session], events: list[CaseEvent]) -> ProjectionMetrics:
    """Apply events through the projection's batch writer; its metrics in a private registry."""
    metrics = ProjectionMetrics(CollectorRegistry())
    writer = BatchWriter(session_factory, metrics)
    writer.write([SourceRecord(to_bytes(event), 0, n) for n, event in enumerate(events)])
    return metrics


def history() -> list[CaseEvent]:
    """Four cases: one at risk, one breached and answered late, one resolved, one re-asked."""
    return [
        # ann: general/normal, first message unanswered, first_response in its warning window
        opened("ann"),
        appended("ann", 1),
        with_clock_state(routed("ann"), "first_response", "warning"),
        # bob: general/high, breached; answered 30 min in (late), then writes again at 40 min
        opened("bob"),
        appended("bob", 1, at=T0 + timedelta(minutes=5)),
        with_clock_state(routed("bob", priority=Priority.HIGH), "first_response", "breached"),
        agent_reply("bob", 30),
        clock_event(
            "bob",
            "sla.met",
            30,
            clock="first_response",
            policy="std",
            queue="general",
            priority="high",
            due_at=(T0 + timedelta(minutes=20)).isoformat(),
        ),
        appended("bob", 2, at=T0 + timedelta(minutes=40)),
        # cat: billing/normal, answered in time at 10 min, resolved at 50 min
        opened("cat"),
        appended("cat", 1),
        routed("cat", queue="billing"),
        agent_reply("cat", 10),
        clock_event(
            "cat",
            "sla.met",
            10,
            clock="first_response",
            policy="std",
            queue="billing",
            priority="normal",
            due_at=(T0 + timedelta(hours=8)).isoformat(),
        ),
        *resolved("cat", 50),
    ]


def test_gauges_come_from_the_store(session_factory: sessionmaker[Session]) -> None:
    store(session_factory, history())
    registry = CollectorRegistry()
    registry.register(CaseStoreCollector(session_factory, clock=lambda: NOW))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("escalator_cases_open", queue="general", priority="normal") == 1
    assert value("escalator_cases_open", queue="general", priority="high") == 1
    assert value("escalator_cases_open", queue="billing", priority="normal") is None  # resolved
    assert value("escalator_cases_at_risk", queue="general", clock="first_response") == 1
    assert value("escalator_cases_breached", queue="general", clock="first_response") == 1
    # ann's message of T0 is the oldest unanswered in general (bob's first was answered)
    assert value("escalator_oldest_unanswered_message_age_seconds", queue="general") == 3600
    # billing's only case is resolved: nothing unanswered there
    assert value("escalator_oldest_unanswered_message_age_seconds", queue="billing") == 0


def test_floor_moves_to_the_next_unanswered_message(session_factory: sessionmaker[Session]) -> None:
    events = [e for e in history() if e.case_id != case_id("ann")]
    store(session_factory, events)
    registry = CollectorRegistry()
    registry.register(CaseStoreCollector(session_factory, clock=lambda: NOW))
    # bob's second message (40 min) is now the oldest without a reply after it
    age = registry.get_sample_value(
        "escalator_oldest_unanswered_message_age_seconds", {"queue": "general"}
    )
    assert age == 20 * 60


def test_slo_histograms_and_attainment(session_factory: sessionmaker[Session]) -> None:
    metrics = store(session_factory, history())
    registry = metrics.registry
    general = {"queue": "general", "priority": "high"}
    billing = {"queue": "billing", "priority": "normal"}
    assert sample(registry, "escalator_first_response_seconds_count", **general) == 1
    assert sample(registry, "escalator_first_response_seconds_sum", **general) == 30 * 60
    assert sample(registry, "escalator_first_response_seconds_sum", **billing) == 10 * 60
    assert sample(registry, "escalator_resolution_seconds_sum", **billing) == 50 * 60
    met = {"policy": "std", "clock": "first_response"}
    assert (
        sample(registry, "escalator_sla_clocks_met_total", **met, queue="general", outcome="late")
        == 1
    )
    assert (
        sample(
            registry, "escalator_sla_clocks_met_total", **met, queue="billing", outcome="in_time"
        )
        == 1
    )
    exposition = openmetrics(registry).decode()
    assert f'# {{case_id="{case_id("cat")}"}} 600.0' in exposition


def test_redelivered_events_are_not_counted_twice(session_factory: sessionmaker[Session]) -> None:
    metrics = ProjectionMetrics(CollectorRegistry())
    writer = BatchWriter(session_factory, metrics)
    records = [SourceRecord(to_bytes(event), 0, n) for n, event in enumerate(history())]
    writer.write(records)
    writer.write(records)  # a restart before the offset commit redelivers the batch
    assert (
        sample(
            metrics.registry,
            "escalator_resolution_seconds_count",
            queue="billing",
            priority="normal",
        )
        == 1
    )
    assert (
        sample(
            metrics.registry,
            "escalator_sla_clocks_met_total",
            policy="std",
            clock="first_response",
            queue="billing",
            outcome="in_time",
        )
        == 1
    )
