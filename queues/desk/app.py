"""The desk: a FastAPI app serving the agent API under `/v1` (OpenAPI at `/openapi.json`).

Reads come from the case store; every write is an agent action published to
`agent.actions` and decided by the stream (see `queues.desk.gateway`). The agent
console (pages under `/console`) is served by the same app (`queues.desk.console`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from kafkaio import Record
from kafkaio.blocking import BlockingProducer
from queues.dead_letters import KafkaDeadLetters
from queues.desk import customers, events, routes_cases, routes_desk
from queues.desk.assigner import Assigner, AssignerService
from queues.desk.authz import RefusedError
from queues.desk.console import mount_console
from queues.desk.context import DeskContext
from queues.desk.directory import Directory
from queues.desk.gateway import DEFAULT_OUTCOME_TIMEOUT_SECONDS, ActionGateway
from queues.desk.hardening import (
    DeskGuard,
    RateLimitedError,
    SignInLimits,
    WebSecurity,
    redact_access_log,
)
from queues.desk.leader import Leadership
from queues.desk.pager_webhooks import PagerWebhookSecrets
from queues.desk.pager_webhooks import router as pager_webhooks_router
from queues.desk.presence import DEFAULT_PRESENCE_TIMEOUT
from queues.desk.reads import DeskReads
from queues.engine import make_engine, make_session_factory
from queues.presence_projection import PresenceProjection
from schemas import AgentAction, AgentPresence

API_VERSION = "1"


@dataclass(frozen=True)
class AssignerOptions:
    """Where the assigner elects its leader, and how often it runs."""

    kafka_config: Mapping[str, Any]
    election_topic: str
    group_id: str | None = None
    """Default: the election topic's name, so deployments sharing a cluster never mix."""
    tick_seconds: float = 0.5


def _start_assigner(
    options: AssignerOptions,
    directory: Directory,
    reads: DeskReads,
    producer_config: Mapping[str, Any],
    actions_topic: str,
    presence: tuple[str, float] | None,
) -> AssignerService:
    producer = BlockingProducer(producer_config)

    def publish(actions: list[AgentAction]) -> None:
        producer.send(
            [
                Record(actions_topic, action.case_id.encode(), action.model_dump_json().encode())
                for action in actions
            ]
        )

    def publish_presence(records: list[AgentPresence]) -> None:
        assert presence is not None
        producer.send(
            [
                Record(presence[0], record.agent_id.encode(), record.model_dump_json().encode())
                for record in records
            ]
        )

    leadership = Leadership(options.kafka_config, options.election_topic, options.group_id)

    def close() -> None:
        leadership.close()
        producer.close(10)

    assigner = Assigner(
        directory,
        reads,
        publish,
        publish_presence=None if presence is None else publish_presence,
        presence_timeout=timedelta(
            seconds=presence[1] if presence else DEFAULT_PRESENCE_TIMEOUT.total_seconds()
        ),
    )
    service = AssignerService(assigner, leadership.keep_alive, close, options.tick_seconds)
    service.start()
    return service


async def _refused(_request: Request, error: Exception) -> Response:
    assert isinstance(error, RefusedError)
    return JSONResponse({"detail": error.detail}, status_code=error.status_code)


async def _rate_limited(_request: Request, error: Exception) -> Response:
    assert isinstance(error, RateLimitedError)
    return JSONResponse(
        {"detail": error.detail},
        status_code=429,
        headers={"Retry-After": str(error.retry_after)},
    )


def create_desk_app(
    *,
    database_url: str,
    producer_config: Mapping[str, Any],
    actions_topic: str,
    outcome_timeout_seconds: float = DEFAULT_OUTCOME_TIMEOUT_SECONDS,
    events_poll_seconds: float = 0.25,
    assigner: AssignerOptions | None = None,
    presence_topic: str | None = None,
    presence_timeout_seconds: float = DEFAULT_PRESENCE_TIMEOUT.total_seconds(),
    consumer_config: Mapping[str, Any] | None = None,
    web_security: WebSecurity | None = None,
    dead_letter_topic: str | None = None,
    pager_webhooks: PagerWebhookSecrets | None = None,
) -> FastAPI:
    """Build the desk app on a migrated case store and a Kafka producer configuration.

    `producer_config` is a complete confluent-kafka configuration (connection, acks=all,
    the murmur2 partitioner so actions land on their case's partition). With `assigner`,
    the process also takes part in the assigner election and assigns while it leads.
    With `presence_topic`, presence changes are records on it, applied to the store by
    this process's presence projection (`consumer_config`: the connection settings,
    default the producer's `bootstrap.servers`), and the assigner expires silent agents.
    `web_security`: the cookie, origin, header and sign-in rules (`queues.desk.hardening`).
    Presence records it cannot apply go to `dead_letter_topic` when given.
    `pager_webhooks`: the secrets of PagerDuty's and Opsgenie's acknowledgement webhooks.
    """
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    reads = DeskReads(sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = ActionGateway(
            producer_config=producer_config,
            topic=actions_topic,
            reads=reads,
            presence_topic=presence_topic,
            outcome_timeout_seconds=outcome_timeout_seconds,
        )
        context = DeskContext(
            directory=Directory(sessions),
            reads=reads,
            gateway=gateway,
            events_poll_seconds=events_poll_seconds,
            presence_timeout_seconds=presence_timeout_seconds,
        )
        app.state.desk = context
        app.state.directory = context.directory
        projection = None
        dead_letters = (
            None
            if dead_letter_topic is None
            else KafkaDeadLetters(producer_config, dead_letter_topic)
        )
        if presence_topic is not None:
            projection = PresenceProjection(
                kafka_config=consumer_config
                or {"bootstrap.servers": producer_config["bootstrap.servers"]},
                topic=presence_topic,
                session_factory=sessions,
                dead_letters=dead_letters,
            )
            projection.start()
        presence = None if presence_topic is None else (presence_topic, presence_timeout_seconds)
        service = (
            None
            if assigner is None
            else _start_assigner(
                assigner, context.directory, reads, producer_config, actions_topic, presence
            )
        )
        try:
            yield
        finally:
            if service is not None:
                service.stop()
            if projection is not None:
                projection.stop()
            if dead_letters is not None:
                dead_letters.close()
            gateway.close()
            engine.dispose()

    app = FastAPI(
        title="Escalator desk",
        version=API_VERSION,
        summary="Agent queues: cases, claims, replies, presence, live changes.",
        lifespan=lifespan,
        responses={
            429: {"description": "Too many failed sign-ins from this address; see Retry-After."}
        },
    )
    security = web_security or WebSecurity()
    app.state.web_security = security
    app.state.sign_in_limits = SignInLimits(security)
    app.add_middleware(DeskGuard)
    app.add_exception_handler(RefusedError, _refused)
    app.add_exception_handler(RateLimitedError, _rate_limited)
    redact_access_log()
    app.include_router(routes_desk.router)
    app.include_router(routes_cases.router)
    app.include_router(customers.router)
    app.include_router(events.router)
    app.state.pager_webhooks = pager_webhooks or PagerWebhookSecrets()
    app.include_router(pager_webhooks_router)
    mount_console(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
