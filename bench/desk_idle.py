"""What idle console connections cost the desk: process CPU with N open event streams.

`escalator desk` runs as deployed (its own process, SQLite case store, the local broker).
The desk's CPU time is read from /proc over the same window twice: with no stream open (the
baseline: its assigner, presence and pollers alone), then with `--connections` agents each
following `/v1/events` and nothing happening. The clients are raw asyncio sockets in this
process, so their cost is not counted. Target: the streams cost under 0.2 of a core.

The last line is one JSON object with both figures.

Run: .venv/bin/python bench/desk_idle.py [--connections 500] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from escalator.demo.processes import free_port  # noqa: E402
from queues import make_engine, make_session_factory, upgrade  # noqa: E402
from queues.desk import Directory  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cores_used(pid: int, seconds: float) -> float:
    """The process's CPU over a window, in cores."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


async def follow(port: int, token: str, opened: asyncio.Event, count: list[int]) -> None:
    """One console's event stream: send the request, read the headers, then keep reading."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"the desk answered {status!r}")
    count[0] += 1
    if count[0] >= count[1]:
        opened.set()
    try:
        while await reader.read(65536):
            pass
    finally:
        writer.close()


async def hold_streams(
    port: int, tokens: list[str], seconds: float, pid: int
) -> tuple[float, float]:
    """Open a stream per token, wait until all answered, measure the desk for `seconds`."""
    opened = asyncio.Event()
    count = [0, len(tokens)]
    started = time.monotonic()
    tasks = [asyncio.create_task(follow(port, token, opened, count)) for token in tokens]
    await asyncio.wait_for(opened.wait(), timeout=300)
    connect_seconds = time.monotonic() - started
    await asyncio.sleep(2)  # let the connects' own work finish
    used = await asyncio.to_thread(cores_used, pid, seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return used, connect_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=500, help="open event streams")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--agents", type=int, default=50, help="agents the streams belong to")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/desk.db"
        upgrade(url)
        engine = make_engine(url)
        directory = Directory(make_session_factory(engine))
        tokens = [
            directory.add_agent(f"bench-{n}", queues=["general"])[1] for n in range(args.agents)
        ]
        engine.dispose()
        port = free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "ESCALATOR_TOPIC_PREFIX": f"benchdesk{os.getpid()}.",
            "ESCALATOR_DATABASE_URL": url,
            "ESCALATOR_DESK_PORT": str(port),
            "ESCALATOR_LOG_LEVEL": "WARNING",
        }
        escalator = str(Path(sys.executable).parent / "escalator")
        desk = subprocess.Popen([escalator, "desk"], env=env)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or desk.poll() is not None:
                    raise RuntimeError("escalator desk did not start")
                time.sleep(0.3)
            time.sleep(2)
            baseline = cores_used(desk.pid, args.seconds)
            streams = [tokens[n % len(tokens)] for n in range(args.connections)]
            used, connect_seconds = asyncio.run(hold_streams(port, streams, args.seconds, desk.pid))
        finally:
            desk.terminate()
            desk.wait(30)
    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load average {load:.2f}"
    )
    print(f"desk process, no stream open:           {baseline:.3f} cores")
    print(f"desk process, {args.connections} idle streams open:  {used:.3f} cores")
    print(f"cost of the idle streams:               {used - baseline:.3f} cores (target < 0.2)")
    print(
        json.dumps(
            {
                "connections": args.connections,
                "seconds": args.seconds,
                "desk_cores_no_streams": round(baseline, 4),
                "desk_cores_with_streams": round(used, 4),
                "idle_streams_cores": round(used - baseline, 4),
                "connect_seconds": round(connect_seconds, 2),
                "load_average": round(load, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
