"""`escalator demo` as a newcomer meets it: a console with ready logins, and a clean stop.

The demo runs as a process, as `make demo` runs it. It prints the console's URL with a
token for a demo agent and a demo lead; the lead's token signs in. A SIGTERM then stops the
demo and everything it started: afterwards nothing answers on the ports it printed, the
embedded broker's included, and the reply service's.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

STARTUP_SECONDS = 300.0
URL = re.compile(r"(?P<name>[a-z_]+): (?P<url>(?:http://)?[\w.]+:\d+\S*)")
LOGIN = re.compile(r"console login (?P<name>demo-\w+) \((?P<role>\w+)\): (?P<token>\S+)")


def _answers(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def test_the_demo_serves_the_console_with_logins_and_stops_everything_on_sigterm(
    tmp_path: Path,
) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "escalator", "demo", "--rate", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "400", "TMPDIR": str(tmp_path)},
        start_new_session=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert demo.stdout is not None
        for raw in demo.stdout:
            lines.append(raw.decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not any("demo-lead" in line for line in lines):
            assert demo.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.5)
        text = "".join(lines)
        urls = {m["name"]: m["url"] for m in URL.finditer(text)}
        logins = {m["name"]: m for m in LOGIN.finditer(text)}
        assert {"demo-agent", "demo-lead"} <= set(logins), text[-2000:]
        assert logins["demo-lead"]["role"] == "lead"
        console = urls["console"]
        assert console.endswith("/console/login")
        signed_in = httpx.post(
            console,
            data={"token": logins["demo-lead"]["token"]},
            headers={"Origin": console.split("/console")[0]},
            follow_redirects=False,
            timeout=30,
        )
        assert signed_in.status_code == 303, signed_in.text
        assert signed_in.headers["location"].endswith("/console/queue")
        assert "escalator_token" in signed_in.headers.get("set-cookie", "") or signed_in.cookies
        replies_ready = urls["replies_metrics"].replace("/metrics", "/readyz")
        assert httpx.get(replies_ready, timeout=30).status_code == 200
        assert "outbox: " in text, text[-2000:]
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=120)
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
    endpoints = [
        url.removeprefix("http://").split("/")[0] for name, url in urls.items() if name != "kafka"
    ] + [urls["kafka"]]
    still = [e for e in endpoints if _answers(e.split(":")[0], int(e.split(":")[1]))]
    assert not still, f"still answering after SIGTERM: {still}"
