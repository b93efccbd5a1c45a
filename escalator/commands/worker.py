"""`escalator worker`: run the stream processor (faust) in this process."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from escalator.settings import KafkaSettings, Settings


def run_worker(
    web_port: Annotated[
        int | None, typer.Option(help="Port of /metrics, /healthz, /readyz (default 6066).")
    ] = None,
) -> None:
    """Run a stream worker: intake, threading, rules, routing. Scale out by running more."""
    import faust

    from escalator.wiring import build_worker_app

    settings = Settings()
    if web_port is not None:
        settings.worker_web_port = web_port
    logging.basicConfig(level=settings.log_level)
    app = build_worker_app(settings, KafkaSettings())
    worker = faust.Worker(app, loglevel=settings.log_level.lower())
    worker.execute_from_commandline()
