"""Baseline: a trivial faust agent that only forwards each record (`await topic.send`)."""

from __future__ import annotations

import os
import sys

import faust

source_name, sink_name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
app = faust.App(
    f"{source_name}-forward",
    broker=f"kafka://{os.environ.get('KAFKA_BOOTSTRAP_SERVERS', 'localhost:9092')}",
    store="memory://",
    key_serializer="raw",
    value_serializer="raw",
    consumer_auto_offset_reset="earliest",
    web_port=port,
    web_host="127.0.0.1",
    web_bind="127.0.0.1",
)
source = app.topic(source_name, key_type=bytes, value_type=bytes)
sink = app.topic(sink_name, key_type=bytes, value_type=bytes)


@app.agent(source)
async def forward(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        await sink.send(key=event.message.key, value=event.message.value)


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning").execute_from_commandline()
