"""`escalator connect http` as one process or one per core (`ESCALATOR_HTTP_WORKERS`).

uvicorn serves the ingress on its fast stack (uvloop, httptools). With several processes
(uvicorn's `workers`, each building the app through `ingress_app`), the kernel spreads the
connections over them, and what a process would otherwise keep to itself is shared:

- the webhook replay window: a SQLite file in a fresh temporary folder
  (`connectors.channels.SharedReplayCache`), so a replay reaching another process is still
  refused;
- `/metrics`: prometheus-client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, a fresh
  folder), so whichever process answers, it reports the sums of all of them;
- the API keys file needs nothing: every process re-reads it when it changes.

Each process has its own Kafka producer (acks=all, idempotent), as one process had.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from connectors.channels import Inbound, MessageSink
from connectors.channels.registry import inbound_routers, provider_settings
from connectors.publisher import OutboundRecord, PublishError
from escalator.observability.health_server import HealthServer
from escalator.observability.logs import configure_logging
from escalator.settings import ChannelSettings, KafkaSettings, Settings
from metricsio import MULTIPROCESS_DIR_VARIABLE, served_registry

REPLAY_STORE_VARIABLE = "ESCALATOR_WEBHOOK_REPLAY_STORE"

WORKER_START_SECONDS = 60
"""How long a starting process may take to answer uvicorn's supervisor. Its default (5 s) is
shorter than importing the ingress on a busy node, and a process it gives up on is killed and
started again, for ever."""


def worker_count(configured: int) -> int:
    """How many processes to run: `configured`, or one per usable CPU core for 0."""
    if configured > 0:
        return configured
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ingress_app() -> FastAPI:
    """The app of one ingress process, from the environment (uvicorn's factory per worker)."""
    from escalator.connector_wiring import build_ingress_app  # noqa: PLC0415 - heavy; per worker, here

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, settings.log_redact)
    return build_ingress_app(settings, KafkaSettings(), ChannelSettings())


class _Unpublished:
    """The publisher of the routes `check_channels` builds only to check them: never called."""

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        raise PublishError("a configuration check does not publish")

    def check_connection(self, timeout_seconds: float = 2.0) -> bool:
        return False

    def close(self, timeout_seconds: float = 10.0) -> None:
        return None


def check_channels(settings: Settings) -> None:
    """Build every configured channel's routes once, so that a provider configured by half
    (ConfigurationError) stops the ingress before any of its processes starts."""
    sink = MessageSink(_Unpublished(), "unused")
    inbound_routers(provider_settings(), Inbound(sink, settings.max_body_bytes))


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve the ingress until stopped: in this process for one worker, else in `workers`.

    Raises ConfigurationError, before serving, for a provider configured by half.
    """
    shared: Path | None = None
    if workers > 1:
        check_channels(settings)
        # the children inherit these; they must be set before any of them imports prometheus
        shared = Path(tempfile.mkdtemp(prefix="escalator-ingress-"))
        (shared / "metrics").mkdir()
        os.environ.setdefault(MULTIPROCESS_DIR_VARIABLE, str(shared / "metrics"))
        os.environ.setdefault(REPLAY_STORE_VARIABLE, str(shared / "replays.db"))
    metrics = None
    if settings.ingress_metrics_port is not None:  # /metrics off the public port
        metrics = HealthServer(
            settings.ingress_metrics_port,
            lambda: {"serving": True},
            host=settings.ingress_metrics_host,
            registry=served_registry(),
        ).start()
    options = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": settings.log_level.lower(),
        "access_log": False,
        # uvicorn's own log config would bypass the JSON / redacting formatter
        "log_config": None,
    }
    try:
        if workers > 1:
            uvicorn.run(
                f"{__name__}:ingress_app",
                factory=True,
                workers=workers,
                timeout_worker_healthcheck=WORKER_START_SECONDS,
                **options,  # type: ignore[arg-type]
            )
        else:
            uvicorn.run(ingress_app(), **options)  # type: ignore[arg-type]
    finally:
        if metrics is not None:
            metrics.stop()
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)
