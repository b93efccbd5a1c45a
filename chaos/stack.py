"""The processes of one chaos scenario: workers, ingress, projection and reply service."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from escalator.demo import processes
from escalator.demo.processes import ManagedProcess, free_port, wait_until_ready

RULES = Path(__file__).resolve().parent / "rules.yaml"
START_TIMEOUT_SECONDS = 180.0


@dataclass
class ChaosStack:
    """Escalator's processes for one scenario, each restartable by name."""

    env: dict[str, str]
    workdir: Path
    workers: list[ManagedProcess] = field(default_factory=list)
    ingress: ManagedProcess | None = None
    ingress_url: str = ""
    projection: ManagedProcess | None = None
    replies: ManagedProcess | None = None
    _serial: int = 0

    @property
    def logs(self) -> Path:
        """Where every process logs."""
        return self.workdir / "logs"

    def _name(self, kind: str) -> str:
        self._serial += 1
        return f"{kind}-{self._serial}"

    def start_worker(self, wait: bool = True) -> ManagedProcess:
        """Start one more worker of the group (its own data dir) and wait until it is ready."""
        name = self._name("worker")
        port = free_port()
        env = {**self.env, "ESCALATOR_DATA_DIR": str(self.workdir / name)}
        worker = processes.start(name, ["worker", "--web-port", str(port)], env, self.logs)
        self.workers.append(worker)
        if wait:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz", worker, START_TIMEOUT_SECONDS)
        return worker

    def start_ingress(self) -> None:
        """Start the ingress on a free port."""
        port = free_port()
        self.ingress = processes.start(
            self._name("ingress"), ["connect", "http", "--port", str(port)], self.env, self.logs
        )
        self.ingress_url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{self.ingress_url}/healthz", self.ingress, START_TIMEOUT_SECONDS)

    def start_projection(self) -> None:
        """Start the projection into the scenario's case store."""
        port = free_port()
        env = {**self.env, "ESCALATOR_PROJECTION_METRICS_PORT": str(port)}
        self.projection = processes.start(self._name("projection"), ["projection"], env, self.logs)
        wait_until_ready(f"http://127.0.0.1:{port}/metrics", self.projection, START_TIMEOUT_SECONDS)

    def start_replies(self) -> None:
        """Start the reply service (delivering to the scenario's sinks)."""
        port = free_port()
        env = {**self.env, "ESCALATOR_REPLIES_METRICS_PORT": str(port)}
        self.replies = processes.start(
            self._name("replies"), ["connect", "replies"], env, self.logs
        )
        wait_until_ready(f"http://127.0.0.1:{port}/metrics", self.replies, START_TIMEOUT_SECONDS)

    @staticmethod
    def kill9(process: ManagedProcess) -> None:
        """SIGKILL a process and its group: no clean-up, no commit, mid-batch."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.process.pid, signal.SIGKILL)
        process.process.wait(timeout=30)

    def alive_workers(self) -> list[ManagedProcess]:
        """The workers still running."""
        return [worker for worker in self.workers if worker.alive]

    def crashed(self) -> list[str]:
        """Processes that exited although nobody stopped them (checked by the runner)."""
        running = [*self.workers, self.ingress, self.projection, self.replies]
        return [
            f"{p.name} (exit {p.process.returncode})"
            for p in running
            if p is not None
            and not p.stopped  # a worker stopped mid-batch exits 70, acknowledging nothing
            and not p.alive
            and p.process.returncode not in (0, -9, -15)
        ]

    def stop(self) -> None:
        """Stop everything this stack started."""
        for process in [self.replies, self.projection, self.ingress, *self.workers]:
            if process is not None:
                process.stop()
