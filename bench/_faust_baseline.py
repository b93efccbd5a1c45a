"""The faust app of the benches' faust baselines: raw bytes, from the earliest offset."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import faust


def baseline_app(name: str, web_port: int) -> faust.App:
    """A faust app on `KAFKA_BOOTSTRAP_SERVERS` that reads raw records from the start.

    Its data directory is a fresh temporary one, not `<name>-data` in the working directory.
    """
    datadir = tempfile.mkdtemp(prefix=f"{name}-")
    atexit.register(shutil.rmtree, datadir, True)
    return faust.App(
        name,
        datadir=datadir,
        broker=f"kafka://{os.environ.get('KAFKA_BOOTSTRAP_SERVERS', 'localhost:9092')}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        web_port=web_port,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
    )
