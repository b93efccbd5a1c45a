"""The worker's consumer takes the configured fetch wait (faust itself hard-codes 1,500 ms)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust

from escalator.settings import KafkaSettings, Settings
from escalator.wiring import worker_config
from streams.faust_transport import use_fetch_wait


def _worker_fetch_wait(tmp_path: Path, wait_ms: int | None) -> int:
    async def build() -> int:
        app = faust.App(
            "fetch-wait-test",
            broker="kafka://127.0.0.1:1",  # never contacted: the client is only built
            store="memory://",
            datadir=str(tmp_path),
            web_enabled=False,
        )
        if wait_ms is not None:
            use_fetch_wait(app, wait_ms)
        thread = app.consumer._new_consumer_thread()
        client = thread._create_worker_consumer(app.transport)
        return int(client._fetch_max_wait_ms)

    return asyncio.run(build())


def test_the_worker_consumer_uses_the_configured_fetch_wait(tmp_path: Path) -> None:
    assert _worker_fetch_wait(tmp_path / "default", None) == 1500
    assert _worker_fetch_wait(tmp_path / "tuned", 20) == 20


def test_only_the_embedded_broker_shortens_the_fetch_wait(tmp_path: Path) -> None:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    real = worker_config(Settings(), kafka, tmp_path, None)
    demo = worker_config(Settings(embedded_broker="tansu"), kafka, tmp_path, None)
    assert real.fetch_max_wait_ms is None
    assert demo.fetch_max_wait_ms == 20
