"""The faust app of the benches' faust baselines: raw bytes, from the earliest offset."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import faust

DATA = Path(tempfile.gettempdir()) / "escalator-bench-faust"
"""Where the baselines keep faust's data directories (not the working tree)."""


def baseline_app(name: str, web_port: int) -> faust.App:
    """A faust app on `KAFKA_BOOTSTRAP_SERVERS` that reads raw records from the start.

    Its data directory is under `DATA`, which each new baseline clears first: the benches
    run one baseline at a time, and one that was stopped may not have removed its own.
    """
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)  # faust makes the app's directory, not its parents
    return faust.App(
        name,
        datadir=str(DATA / name),
        broker=f"kafka://{os.environ.get('KAFKA_BOOTSTRAP_SERVERS', 'localhost:9092')}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        web_port=web_port,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
    )
