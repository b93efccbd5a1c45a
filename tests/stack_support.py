"""Run Escalator's real processes (worker, ingress, projection) for a test, on its own topics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from escalator.demo import processes


@dataclass
class Stack:
    """Processes started for one test, and where they listen."""

    env: dict[str, str]
    workdir: Path
    started: list[processes.ManagedProcess] = field(default_factory=list)
    ingress_url: str = ""
    worker_url: str = ""
    projection_url: str = ""
    replies_url: str = ""
    desk_url: str = ""

    def start_worker(self) -> processes.ManagedProcess:
        """Start `escalator worker` and wait until its partitions are assigned."""
        port = processes.free_port()
        worker = processes.start(
            f"worker-{len(self.started)}",
            ["worker", "--web-port", str(port)],
            self.env,
            self.workdir / "logs",
        )
        self.started.append(worker)
        self.worker_url = f"http://127.0.0.1:{port}"
        processes.wait_until_ready(f"{self.worker_url}/readyz", worker, timeout_seconds=120)
        return worker

    def start_ingress(self) -> processes.ManagedProcess:
        """Start `escalator connect http` and wait until it answers.

        The pipeline tests post as anyone (`ESCALATOR_INGRESS_AUTH=none`, unless the stack's
        env says otherwise); tests/security/test_ingress_auth.py covers the API keys.
        """
        port = processes.free_port()
        env = {"ESCALATOR_INGRESS_AUTH": "none", **self.env}
        ingress = processes.start(
            "ingress", ["connect", "http", "--port", str(port)], env, self.workdir / "logs"
        )
        self.started.append(ingress)
        self.ingress_url = f"http://127.0.0.1:{port}"
        processes.wait_until_ready(f"{self.ingress_url}/healthz", ingress)
        return ingress

    def start_projection(self) -> processes.ManagedProcess:
        """Start `escalator projection` (case store) with its metrics on a free port."""
        port = processes.free_port()
        env = {**self.env, "ESCALATOR_PROJECTION_METRICS_PORT": str(port)}
        projection = processes.start("projection", ["projection"], env, self.workdir / "logs")
        self.started.append(projection)
        self.projection_url = f"http://127.0.0.1:{port}"
        processes.wait_until_ready(f"{self.projection_url}/metrics", projection)
        return projection

    def start_replies(self, **extra_env: str) -> processes.ManagedProcess:
        """Start `escalator connect replies` (reply delivery) and wait for its /metrics."""
        port = processes.free_port()
        env = {**self.env, "ESCALATOR_REPLIES_METRICS_PORT": str(port), **extra_env}
        replies = processes.start("replies", ["connect", "replies"], env, self.workdir / "logs")
        self.started.append(replies)
        self.replies_url = f"http://127.0.0.1:{port}"
        processes.wait_until_ready(f"{self.replies_url}/metrics", replies)
        return replies

    def start_desk(self) -> processes.ManagedProcess:
        """Start `escalator desk` (the agent API) on a free port and wait until it answers."""
        port = processes.free_port()
        desk = processes.start(
            f"desk-{len(self.started)}",
            ["desk", "--port", str(port)],
            self.env,
            self.workdir / "logs",
        )
        self.started.append(desk)
        self.desk_url = f"http://127.0.0.1:{port}"
        processes.wait_until_ready(f"{self.desk_url}/healthz", desk)
        return desk

    def worker_metrics(self) -> dict[str, float]:
        """The worker's `/metrics`, summed by sample name."""
        return processes.scrape(f"{self.worker_url}/metrics")

    def stop(self) -> None:
        """Stop every process this stack started."""
        for process in reversed(self.started):
            process.stop()


@contextmanager
def escalator_stack(
    bootstrap: str, topic_prefix: str, workdir: Path, **extra_env: str
) -> Iterator[Stack]:
    """A stack whose processes use the given broker, topic prefix and a private data dir."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topic_prefix,
        "ESCALATOR_DATA_DIR": str(workdir),
        "ESCALATOR_DATABASE_URL": f"sqlite:///{workdir / 'escalator.db'}",
        "ESCALATOR_LOG_LEVEL": "INFO",
        "ESCALATOR_MAIL_AUTH": "false",  # no DNS from tests; mail auth is tested on fake answers
        **extra_env,
    }
    stack = Stack(env=env, workdir=workdir)
    try:
        yield stack
    finally:
        stack.stop()
