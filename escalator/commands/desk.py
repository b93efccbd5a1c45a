"""`escalator desk`: serve the agent API (and console), and run the assigner."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from escalator.settings import KafkaSettings, Settings


def desk_app(settings: Settings, kafka: KafkaSettings, **options: Any) -> Any:
    """The desk FastAPI app wired to the settings' case store and Kafka."""
    from connectors.publisher import PRODUCER_DEFAULTS
    from queues.desk import create_desk_app
    from queues.desk.app import AssignerOptions

    assigner = (
        AssignerOptions(kafka_config=kafka.librdkafka(), election_topic=kafka.topics.assigner)
        if settings.desk_assigner
        else None
    )
    return create_desk_app(
        database_url=settings.effective_database_url,
        producer_config={**PRODUCER_DEFAULTS, **kafka.librdkafka()},
        actions_topic=kafka.topics.agent_actions,
        assigner=assigner,
        **options,
    )


def run_desk(
    host: Annotated[str | None, typer.Option(help="Listen address (ESCALATOR_DESK_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (ESCALATOR_DESK_PORT, 8090).")] = None,
    migrate: Annotated[
        bool, typer.Option(help="Upgrade the case store schema before starting.")
    ] = True,
) -> None:
    """Serve the desk API under /v1 (OpenAPI at /openapi.json) until SIGINT or SIGTERM."""
    import uvicorn

    from escalator.topic_admin import ensure_topics
    from queues import upgrade

    settings = Settings()
    kafka = KafkaSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if migrate:
        upgrade(settings.effective_database_url)
    ensure_topics(kafka, {kafka.topics.agent_actions: {}, kafka.topics.assigner: {}})
    app = desk_app(settings, kafka)
    uvicorn.run(
        app,
        host=host or settings.desk_host,
        port=port or settings.desk_port,
        log_level=settings.log_level.lower(),
    )
