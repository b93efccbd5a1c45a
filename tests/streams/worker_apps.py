"""A bare faust app on the worker's own consumer, for tests against the real broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from streams.faust_transport import use_worker_consumer


def worker_app(
    name: str,
    bootstrap: str,
    datadir: Path,
    held_back_topics: tuple[str, ...] = (),
    **settings: Any,
) -> faust.App:
    """A faust app named `name` whose consumer is the worker's (`use_worker_consumer`),
    holding back the partitions of `held_back_topics` on each assignment."""
    app = faust.App(
        name,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        **settings,
    )
    use_worker_consumer(app, held_back_topics=held_back_topics)
    return app
