"""`escalator worker`: run the stream processor (faust) in this process."""

from __future__ import annotations

from typing import Annotated

import typer

from escalator.observability.logs import configure_logging, dict_config
from escalator.settings import KafkaSettings, Settings


def run_worker(
    web_port: Annotated[
        int | None, typer.Option(help="Port of /metrics, /healthz, /readyz (default 6066).")
    ] = None,
) -> None:
    """Run a stream worker: intake, threading, rules, routing. Scale out by running more."""
    import faust

    from escalator.wiring import build_worker_app
    from metricsio.gc_tuning import record_gc_pauses, tune_collector

    settings = Settings()
    if web_port is not None:
        settings.worker_web_port = web_port
    configure_logging(settings.log_level, settings.log_format, settings.log_redact)
    app = build_worker_app(settings, KafkaSettings())
    custom = settings.log_format == "json" or settings.log_redact
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.lower(),
        # faust re-configures logging when it starts: hand it ours (else its coloured text)
        logging_config=(
            dict_config(settings.log_level, settings.log_format, settings.log_redact)
            if custom
            else None
        ),
    )
    record_gc_pauses()
    tune_collector()  # the start-up heap out of every collection; each restore freezes its own
    worker.execute_from_commandline()
