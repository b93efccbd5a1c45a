"""`escalator projection`: keep the case store up to date from the case events topic."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import REGISTRY, start_http_server

from escalator.settings import KafkaSettings, Settings
from queues import (
    DEFAULT_GROUP_ID,
    Projection,
    ProjectionMetrics,
    make_engine,
    make_session_factory,
    upgrade,
)
from queues.store import redacted_url

log = logging.getLogger(__name__)


def run_projection(
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Port of /metrics (default ESCALATOR_PROJECTION_METRICS_PORT, 9464)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per transaction, at most.")] = 500,
    migrate: Annotated[
        bool, typer.Option(help="Upgrade the case store schema before starting.")
    ] = True,
) -> None:
    """Project case events into the case store until SIGINT or SIGTERM."""
    from escalator.topic_admin import ensure_topics
    from escalator.wiring import consumer_config

    settings = Settings()
    kafka = KafkaSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    url = settings.effective_database_url
    if migrate:
        upgrade(url)
    port = settings.projection_metrics_port if metrics_port is None else metrics_port
    server, _thread = start_http_server(port, registry=REGISTRY)
    engine = make_engine(url)
    # librdkafka notices a topic created after subscribe() only at its next metadata refresh
    # (minutes): make sure it exists first, as the worker does.
    ensure_topics(kafka, {kafka.topics.case_events: {}})
    projection = Projection(
        kafka_config=consumer_config(settings, kafka),
        topic=kafka.topics.case_events,
        session_factory=make_session_factory(engine),
        group_id=DEFAULT_GROUP_ID,
        metrics=ProjectionMetrics(REGISTRY),
        batch_size=batch_size,
    )

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current batch", signum)
        projection.stop()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    log.info(
        "projecting %s into %s; metrics on http://127.0.0.1:%d/metrics",
        kafka.topics.case_events,
        redacted_url(url),
        port,
    )
    try:
        projection.run_until_stopped()
    finally:
        server.shutdown()
        engine.dispose()
