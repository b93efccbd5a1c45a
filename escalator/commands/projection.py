"""`escalator projection`: keep the case store up to date from the case events topic."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import REGISTRY
from sqlalchemy import text

from escalator.commands._service import MigrateFirst, start_service
from metricsio.gc_tuning import record_gc_pauses, tune_collector
from queues import (
    DEFAULT_GROUP_ID,
    Projection,
    ProjectionMetrics,
    make_engine,
    make_session_factory,
)
from queues.effort import EffortPolicy
from queues.effort_metrics import EffortCollector
from queues.identity_projection import IdentityProjection
from queues.store import redacted_url
from queues.store_metrics import CaseStoreCollector

log = logging.getLogger(__name__)


def run_projection(
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Port of /metrics (default ESCALATOR_PROJECTION_METRICS_PORT, 9464)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per transaction, at most.")] = 500,
    migrate: MigrateFirst = True,
) -> None:
    """Project case events into the case store until SIGINT or SIGTERM."""
    from connectors.publisher import KafkaPublisher
    from escalator.observability.health_server import HealthServer
    from escalator.observability.kafka_lag import KafkaLagCollector, WatchedGroup
    from escalator.topic_admin import ensure_topics
    from escalator.wiring import consumer_config
    from streams.poison import ThreadDeadLetters

    settings, kafka = start_service(migrate)
    url = settings.effective_database_url
    port = settings.projection_metrics_port if metrics_port is None else metrics_port
    engine = make_engine(url)
    session_factory = make_session_factory(engine)
    # librdkafka notices a topic created after subscribe() only at its next metadata refresh
    # (minutes): make sure it exists first, as the worker does.
    ensure_topics(
        kafka,
        {
            kafka.topics.case_events: {},
            kafka.topics.dlq: {},
            kafka.topics.identity: {"cleanup.policy": "compact"},
        },
    )
    publisher = KafkaPublisher(kafka.librdkafka(), delivery_timeout_seconds=30.0)
    dead_letters = ThreadDeadLetters(
        publisher,
        kafka.topics.dlq,
        "projection",
        settings.max_record_bytes,
    )
    projection = Projection(
        kafka_config=consumer_config(settings, kafka),
        topic=kafka.topics.case_events,
        session_factory=session_factory,
        group_id=DEFAULT_GROUP_ID,
        metrics=ProjectionMetrics(REGISTRY),
        batch_size=batch_size,
        dead_letters=dead_letters.write_letters,
        max_record_bytes=settings.max_record_bytes,
        effort=EffortPolicy(settings.repeat_contact_window, settings.effort_settle_grace),
    )
    REGISTRY.register(CaseStoreCollector(session_factory))
    REGISTRY.register(EffortCollector(session_factory))
    # merges and splits of customers, for their histories (queues.history)
    identity = IdentityProjection(
        kafka.librdkafka(),
        kafka.topics.identity,
        session_factory,
        ThreadDeadLetters(
            publisher, kafka.topics.dlq, "identity-projection", settings.max_record_bytes
        ),
    )
    identity.catch_up()
    identity.start()
    lag = KafkaLagCollector(
        kafka.librdkafka(),
        [WatchedGroup(DEFAULT_GROUP_ID, [kafka.topics.case_events])],
        refresh_seconds=settings.lag_refresh_seconds,
    )
    REGISTRY.register(lag.start())

    def readiness() -> dict[str, bool]:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            database = True
        except Exception:  # any failure to reach it means not ready
            database = False
        stalled = settings.stall_seconds > 0 and (
            projection.stalled_seconds() >= settings.stall_seconds
        )
        return {
            "partitions_assigned": bool(projection.assigned),
            "database": database,
            "progressing": not stalled,
        }

    # all interfaces, as before: Prometheus scrapes it from outside the container
    server = HealthServer(port, readiness, host="0.0.0.0").start()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current batch", signum)
        projection.stop()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    log.info(
        "projecting %s into %s; /metrics, /healthz, /readyz on port %d",
        kafka.topics.case_events,
        redacted_url(url),
        port,
    )
    record_gc_pauses()
    tune_collector()
    try:
        projection.run_until_stopped()
    finally:
        identity.stop()
        lag.stop()
        server.stop()
        publisher.close()
        engine.dispose()
