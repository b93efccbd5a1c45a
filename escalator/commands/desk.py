"""`escalator desk`: serve the agent API (and console), and run the assigner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from escalator.commands._service import MigrateFirst, start_service
from escalator.settings import KafkaSettings, Settings


def desk_app(settings: Settings, kafka: KafkaSettings, **options: Any) -> Any:
    """The desk FastAPI app wired to the settings' case store and Kafka."""
    from connectors.publisher import PRODUCER_DEFAULTS
    from queues.desk import create_desk_app
    from queues.desk.app import AssignerOptions
    from queues.desk.hardening import WebSecurity
    from queues.desk.pager_webhooks import PagerWebhookSecrets

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
        presence_topic=kafka.topics.agent_presence,
        dead_letter_topic=kafka.topics.dlq,
        presence_timeout_seconds=settings.desk_presence_timeout_seconds,
        consumer_config=kafka.librdkafka(),
        outcome_timeout_seconds=settings.desk_verdict_timeout_seconds,
        web_security=WebSecurity(
            plain_http=settings.desk_plain_http,
            login_failures_per_address=settings.desk_login_failures_per_address,
            logins_per_agent=settings.desk_logins_per_agent,
            window_seconds=settings.desk_login_window_seconds,
        ),
        pager_webhooks=PagerWebhookSecrets(
            pagerduty=tuple(
                secret.get_secret_value() for secret in settings.pagerduty_webhook_secrets
            ),
            opsgenie=(
                settings.opsgenie_webhook_secret.get_secret_value()
                if settings.opsgenie_webhook_secret
                else None
            ),
        ),
        **options,
    )


def run_desk(
    host: Annotated[str | None, typer.Option(help="Listen address (ESCALATOR_DESK_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (ESCALATOR_DESK_PORT, 8090).")] = None,
    migrate: MigrateFirst = True,
) -> None:
    """Serve the desk API under /v1 (OpenAPI at /openapi.json) until SIGINT or SIGTERM."""
    import uvicorn

    from escalator.observability.web_routes import add_operational_routes
    from escalator.topic_admin import ensure_topics

    settings, kafka = start_service(migrate)
    ensure_topics(
        kafka,
        {
            kafka.topics.agent_actions: {},
            kafka.topics.assigner: {},
            kafka.topics.agent_presence: {"cleanup.policy": "compact"},
        },
    )
    app = desk_app(settings, kafka)
    add_operational_routes(app, desk_readiness(settings, kafka))
    uvicorn.run(
        app,
        host=host or settings.desk_host,
        port=port or settings.desk_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # our formatter (JSON, redaction) for uvicorn's loggers too
    )


def desk_readiness(settings: Settings, kafka: KafkaSettings) -> Callable[[], dict[str, bool]]:
    """The desk is ready when the case store answers and Kafka answers a metadata request."""
    from confluent_kafka import KafkaException
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from kafkaio import clients
    from queues import make_engine

    engine = make_engine(settings.effective_database_url)
    admin = clients.admin(kafka.librdkafka())

    def check() -> dict[str, bool]:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            database = True
        except SQLAlchemyError:
            database = False
        try:
            kafka_up = bool(admin.list_topics(timeout=1.0).brokers)
        except KafkaException:
            kafka_up = False
        return {"database": database, "kafka": kafka_up}

    return check
