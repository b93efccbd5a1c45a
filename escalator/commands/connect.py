"""`escalator connect`: run the inbound connectors."""

from __future__ import annotations

from typing import Annotated

import typer

from escalator.settings import KafkaSettings, Settings

app = typer.Typer(help="Inbound connectors.", no_args_is_help=True)


@app.command("http")
def http(
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
) -> None:
    """Serve `POST /v1/messages` (and /metrics, /healthz, /readyz)."""
    import uvicorn

    from escalator.wiring import build_ingress_app

    settings = Settings()
    uvicorn.run(
        build_ingress_app(settings, KafkaSettings()),
        host=host or settings.http_host,
        port=port or settings.http_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
