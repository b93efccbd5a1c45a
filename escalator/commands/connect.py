"""`escalator connect`: the connectors (webhooks, SMTP, IMAP in; replies, notifications out)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from connectors.email.plugin import EmailSettings
from connectors.publisher import KafkaPublisher
from escalator.observability.health_server import HealthServer
from escalator.observability.logs import configure_logging
from escalator.settings import KafkaSettings, Settings

app = typer.Typer(help="Channel connectors, inbound and outbound.", no_args_is_help=True)
log = logging.getLogger(__name__)


@app.command("http")
def http(
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0, help="Processes sharing the port, 0 = one per core (ESCALATOR_HTTP_WORKERS)."
        ),
    ] = None,
) -> None:
    """Serve `POST /v1/messages`, every configured channel webhook, /metrics, /healthz, /readyz."""
    from connectors.channels import ConfigurationError
    from escalator.ingress_server import serve, worker_count

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, settings.log_redact)
    count = worker_count(settings.http_workers if workers is None else workers)
    log.info("ingress: %d process%s", count, "" if count == 1 else "es")
    try:
        serve(settings, host or settings.http_host, port or settings.http_port, count)
    except ConfigurationError as exc:  # a provider configured by half: refuse to start
        raise typer.BadParameter(str(exc)) from exc


@app.command("smtp")
def smtp(
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 2525).")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of /metrics, /healthz, /readyz (default 9466).")
    ] = None,
) -> None:
    """Receive mail for ESCALATOR_SMTP_DOMAINS over SMTP; other recipients get 550."""
    import threading

    from escalator.connector_wiring import build_smtp_connector

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, settings.log_redact)
    channels = EmailSettings()
    if not channels.smtp_domain_list:
        raise typer.BadParameter("set ESCALATOR_SMTP_DOMAINS (comma-separated) first")
    connector, publisher = build_smtp_connector(KafkaSettings(), channels, port)
    connector.start()
    health = _health_server(metrics_port or settings.smtp_metrics_port, publisher)
    host, bound = connector.address
    log.info(
        "smtp: accepting mail for %s on %s:%d", ", ".join(channels.smtp_domain_list), host, bound
    )
    log.info(
        "smtp: STARTTLS %s; SPF/DKIM/DMARC %s",
        ("required" if channels.smtp_require_tls else "offered")
        if channels.smtp_tls_cert
        else "off (set ESCALATOR_SMTP_TLS_CERT and _KEY)",
        "on" if channels.mail_auth else "off",
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        health.stop()
        connector.stop()
        publisher.close()


@app.command("imap")
def imap(
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of /metrics, /healthz, /readyz (default 9467).")
    ] = None,
) -> None:
    """Poll the mailbox in ESCALATOR_IMAP_* and publish its new mail."""
    import asyncio

    from escalator.connector_wiring import build_imap_poller

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, settings.log_redact)
    channels = EmailSettings()
    try:
        poller, publisher = build_imap_poller(KafkaSettings(), channels)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    log.info(
        "imap: polling %s/%s every %ss",
        channels.imap_host,
        channels.imap_folder,
        channels.imap_poll_seconds,
    )
    health = _health_server(metrics_port or settings.imap_metrics_port, publisher)
    try:
        asyncio.run(poller.run(asyncio.Event()))
    except KeyboardInterrupt:
        pass
    finally:
        health.stop()
        publisher.close()


@app.command("replies")
def replies() -> None:
    """Deliver agent replies on each case's channel and escalation notifications (cases.events)."""
    import signal

    import httpx
    from prometheus_client import REGISTRY

    from escalator.connector_wiring import build_delivery_service
    from escalator.observability.kafka_lag import KafkaLagCollector, WatchedGroup
    from escalator.settings import OutboundSettings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, settings.log_redact)
    kafka = KafkaSettings()
    outbound = OutboundSettings()
    with httpx.Client(timeout=10.0) as client:
        service = build_delivery_service(kafka, outbound, client)
        lag = KafkaLagCollector(
            kafka.librdkafka(),
            [WatchedGroup(f"{kafka.topics.prefix}replies", [kafka.topics.case_events])],
            refresh_seconds=settings.lag_refresh_seconds,
        )
        REGISTRY.register(lag.start())
        health = HealthServer(
            outbound.replies_metrics_port,
            lambda: {"partitions_assigned": service.holds_partitions()},
            host=settings.http_host,
        ).start()
        signal.signal(signal.SIGTERM, lambda *_: service.stop())
        log.info("replies: delivering from %s", kafka.topics.case_events)
        try:
            service.run()
        except KeyboardInterrupt:
            service.stop()
        finally:
            lag.stop()
            health.stop()


def _health_server(port: int, publisher: KafkaPublisher) -> HealthServer:
    """The side server of a connector without a web server: ready while Kafka answers."""
    return HealthServer(
        port,
        lambda: {"kafka": publisher.check_connection(timeout_seconds=1.0)},
        host="0.0.0.0",
    ).start()
