"""The worker's consumer reads committed records and takes the configured fetch wait.

faust itself reads uncommitted records and hard-codes a 1,500 ms wait.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust

from escalator.settings import KafkaSettings, Settings
from escalator.wiring import worker_config
from streams.faust_transport import use_worker_consumer


def _worker_consumer(tmp_path: Path, wait_ms: int | None, *, configured: bool = True) -> Any:
    async def build() -> Any:
        app = faust.App(
            "fetch-wait-test",
            broker="kafka://127.0.0.1:1",  # never contacted: the client is only built
            store="memory://",
            datadir=str(tmp_path),
            web_enabled=False,
        )
        if configured:
            use_worker_consumer(app, wait_ms)
        thread = app.consumer._new_consumer_thread()
        return thread._create_worker_consumer(app.transport)

    return asyncio.run(build())


def test_the_worker_consumer_uses_the_configured_fetch_wait(tmp_path: Path) -> None:
    assert _worker_consumer(tmp_path / "default", None)._fetch_max_wait_ms == 1500
    assert _worker_consumer(tmp_path / "tuned", 20)._fetch_max_wait_ms == 20


def test_the_worker_consumer_reads_committed_records_only(tmp_path: Path) -> None:
    """Stage C's outputs are transactional: an aborted one must never be processed."""
    assert _worker_consumer(tmp_path / "plain", None, configured=False)._isolation_level == (
        "read_uncommitted"
    )
    assert _worker_consumer(tmp_path / "worker", None)._isolation_level == "read_committed"


def test_only_the_embedded_broker_shortens_the_fetch_wait(tmp_path: Path) -> None:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    real = worker_config(Settings(), kafka, tmp_path, None)
    demo = worker_config(Settings(embedded_broker="tansu"), kafka, tmp_path, None)
    assert real.fetch_max_wait_ms is None
    assert demo.fetch_max_wait_ms == 20
