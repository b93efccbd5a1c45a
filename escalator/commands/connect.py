"""`escalator connect`: the connectors (webhooks, SMTP, IMAP in; replies, notifications out)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from escalator.settings import ChannelSettings, KafkaSettings, Settings

app = typer.Typer(help="Channel connectors, inbound and outbound.", no_args_is_help=True)
log = logging.getLogger(__name__)


@app.command("http")
def http(
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
) -> None:
    """Serve `POST /v1/messages`, every configured channel webhook, /metrics, /healthz, /readyz."""
    import uvicorn

    from escalator.wiring import build_ingress_app

    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    uvicorn.run(
        build_ingress_app(settings, KafkaSettings(), ChannelSettings()),
        host=host or settings.http_host,
        port=port or settings.http_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command("smtp")
def smtp(
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 2525).")] = None,
) -> None:
    """Receive mail for ESCALATOR_SMTP_DOMAINS over SMTP; other recipients get 550."""
    import threading

    from escalator.wiring import build_smtp_connector

    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    channels = ChannelSettings()
    if not channels.smtp_domain_list:
        raise typer.BadParameter("set ESCALATOR_SMTP_DOMAINS (comma-separated) first")
    connector, publisher = build_smtp_connector(KafkaSettings(), channels, port)
    connector.start()
    host, bound = connector.address
    log.info(
        "smtp: accepting mail for %s on %s:%d", ", ".join(channels.smtp_domain_list), host, bound
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        connector.stop()
        publisher.close()


@app.command("imap")
def imap() -> None:
    """Poll the mailbox in ESCALATOR_IMAP_* and publish its new mail."""
    import asyncio

    from escalator.wiring import build_imap_poller

    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    channels = ChannelSettings()
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
    try:
        asyncio.run(poller.run(asyncio.Event()))
    except KeyboardInterrupt:
        pass
    finally:
        publisher.close()


@app.command("replies")
def replies() -> None:
    """Deliver agent replies on each case's channel and escalation notifications (cases.events)."""
    import signal

    import httpx
    from prometheus_client import start_http_server

    from escalator.settings import OutboundSettings
    from escalator.wiring import build_delivery_service

    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    outbound = OutboundSettings()
    start_http_server(outbound.replies_metrics_port, addr=settings.http_host)
    with httpx.Client(timeout=10.0) as client:
        service = build_delivery_service(KafkaSettings(), outbound, client)
        signal.signal(signal.SIGTERM, lambda *_: service.stop())
        log.info("replies: delivering from %s", KafkaSettings().topics.case_events)
        try:
            service.run()
        except KeyboardInterrupt:
            service.stop()
