"""Baseline: a trivial faust agent that only forwards each record (`await topic.send`)."""

from __future__ import annotations

import sys

import faust
from _faust_baseline import baseline_app  # bench/ is this script's own folder

source_name, sink_name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
app = baseline_app(f"{source_name}-forward", port)
source = app.topic(source_name, key_type=bytes, value_type=bytes)
sink = app.topic(sink_name, key_type=bytes, value_type=bytes)


@app.agent(source)
async def forward(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        await sink.send(key=event.message.key, value=event.message.value)


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning").execute_from_commandline()
