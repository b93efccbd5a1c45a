"""Starting and stopping the demo's processes, and reading their `/metrics`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ManagedProcess:
    """An `escalator` sub-command running as a child process, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = False
    """Set once `stop` was called: whatever it exits with then, nobody should call it a crash."""

    def stop(self, timeout_seconds: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL what is still there after the timeout."""
        self.stopped = True
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    @property
    def alive(self) -> bool:
        """True while the child runs."""
        return self.process.poll() is None


def start(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    """Start `python -m escalator ARGS` in its own process group."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "escalator", *args],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ManagedProcess(name, process, log_path)


def wait_until_ready(url: str, process: ManagedProcess, timeout_seconds: float = 90.0) -> None:
    """Poll a readiness URL until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not process.alive:
            tail = process.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{process.name} exited during start-up:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{process.name} not ready after {timeout_seconds:.0f}s ({url})")


def scrape(url: str) -> dict[str, float]:
    """Sum every sample of a `/metrics` page by sample name (labels folded together)."""
    try:
        text = httpx.get(url, timeout=2.0).text
    except httpx.HTTPError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def histogram_quantile(url: str, name: str, quantile: float) -> float | None:
    """A quantile of a Prometheus histogram on a `/metrics` page, as PromQL estimates it."""
    try:
        text = httpx.get(url, timeout=2.0).text
    except httpx.HTTPError:
        return None
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        buckets = sorted(
            (float(sample.labels["le"]), sample.value)
            for sample in family.samples
            if sample.name == f"{name}_bucket"
        )
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = quantile * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in buckets:
        if count >= rank:
            if upper_bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 0.0
            return lower_bound + (upper_bound - lower_bound) * share
        lower_bound, lower_count = upper_bound, count
    return None
