"""Baseline: consume N records and nothing else, with faust (`take_events(1000)`) or raw.

Usage: ``_consume_only.py faust|raw SOURCE COUNT OUTFILE [WEB_PORT]``. Once COUNT records are
in, writes ``{"records", "seconds", "cpu_seconds"}`` to OUTFILE (the span from the first
record to the last, and the process CPU time over the same span) and exits.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

kind, source_name, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
seen: list[int] = [0]
first: list[tuple[float, float]] = []


def note(records: int) -> bool:
    """Count records; True once COUNT are in (the result is written then)."""
    if not first:
        first.append((time.monotonic(), time.process_time()))
    seen[0] += records
    if seen[0] < count:
        return False
    started, cpu = first[0]
    result = {
        "records": seen[0],
        "seconds": time.monotonic() - started,
        "cpu_seconds": time.process_time() - cpu,
    }
    out.write_text(json.dumps(result))
    return True


if kind == "raw":
    from confluent_kafka import Consumer

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{source_name}-raw-consume"}
        | {"auto.offset.reset": "earliest", "enable.auto.commit": True}
    )
    consumer.subscribe([source_name])
    while True:
        batch = [m for m in consumer.consume(1000, 0.1) if not m.error()]
        if batch and note(len(batch)):
            break
    consumer.close()
else:
    import faust
    from _faust_baseline import baseline_app  # bench/ is this script's own folder

    app = baseline_app(f"{source_name}-faust-consume", int(sys.argv[5]))
    source = app.topic(source_name, key_type=bytes, value_type=bytes)

    @app.agent(source)
    async def consume(stream):  # type: ignore[no-untyped-def]
        async for events in stream.take_events(1000, within=0.1):
            if note(len(events)):
                os._exit(0)  # the figure is written; faust's shutdown adds nothing to it

    faust.Worker(app, loglevel="warning").execute_from_commandline()
