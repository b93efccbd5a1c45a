"""The three-broker KRaft cluster of kafka.sh's cluster profile, driven from Python."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec  # the class admin re-exports

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
KAFKA_LIB = REPO / "deploy" / "kafka" / "lib"
LEADER_MOVE = Path(__file__).resolve().parent / "LeaderMove.java"
COORDINATOR_TOPICS = ("__consumer_offsets", "__transaction_state")
"""Whose partition leaders are the group and transaction coordinators."""


@dataclass
class Cluster:
    """A running cluster: its bootstrap list and the commands that hurt it."""

    data_dir: Path
    port: int = 19092
    size: int = 3

    @property
    def env(self) -> dict[str, str]:
        """kafka.sh's environment for this cluster."""
        return {
            **os.environ,
            "KAFKA_CLUSTER_DIR": str(self.data_dir),
            "KAFKA_CLUSTER_PORT": str(self.port),
            "KAFKA_CLUSTER_SIZE": str(self.size),
            # a node that was killed recovers every partition's log before it answers
            "KAFKA_START_TIMEOUT": os.environ.get("KAFKA_START_TIMEOUT", "300"),
        }

    def _run(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(
            ["bash", str(KAFKA_SH), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka.sh {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout.strip()

    def start(self) -> None:
        """Start every node (formatting fresh storage) and wait until all answer."""
        self._run("cluster-start")

    def stop(self) -> None:
        """Stop every node."""
        self._run("cluster-stop", timeout=120)

    @property
    def bootstrap(self) -> str:
        """`host:port,...` of every node."""
        return ",".join(f"localhost:{self.port + i}" for i in range(self.size))

    def kill(self, node: int) -> None:
        """SIGKILL one node: a crash, no controlled shutdown."""
        self._run("node-kill", str(node))

    def stop_node(self, node: int) -> None:
        """Stop one node gracefully."""
        self._run("node-stop", str(node), timeout=120)

    def start_node(self, node: int) -> None:
        """Start one node again and wait until it answers."""
        self._run("node-start", str(node))

    def delete_topics(self, prefix: str) -> None:
        """Delete a finished scenario's topics, so that later restarts recover only their own.

        `CHAOS_KEEP_TOPICS=1` keeps them, to read a failed scenario's log afterwards.
        """
        if os.environ.get("CHAOS_KEEP_TOPICS"):
            return
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        names = [name for name in admin.list_topics(timeout=15).topics if name.startswith(prefix)]
        if not names:
            return
        for future in admin.delete_topics(names, operation_timeout=60).values():
            # already gone, or the cluster is busy: the next run starts fresh anyway
            with contextlib.suppress(Exception):
                future.result(timeout=120)

    def leader_counts(self, topics: list[str]) -> dict[int, int]:
        """How many partitions of these topics each node leads."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        metadata = admin.list_topics(timeout=15)
        counts: dict[int, int] = {}
        for name in topics:
            topic = metadata.topics.get(name)
            if topic is None:
                continue
            for partition in topic.partitions.values():
                counts[partition.leader] = counts.get(partition.leader, 0) + 1
        return counts

    def move_leaders(self, group: str, prefixes: list[str]) -> dict[str, Any]:
        """Move the leader of every partition of these topics, as an operator's rebalance does.

        Each partition's replicas are reordered so that its preferred leader is another broker
        (a reassignment that moves no data), then a preferred leader election moves the
        leaders: what `kafka-reassign-partitions` followed by `kafka-leader-election
        --election-type preferred` does, and what Kafka's periodic preferred-leader rebalance
        does by itself to leaders that are not preferred. Pass COORDINATOR_TOPICS among the
        prefixes to move the group and transaction coordinators too. Returns the tool's
        summary: partitions, leaders moved, and `group`'s coordinators before and after.
        """
        result = subprocess.run(
            ["java", "-cp", f"{KAFKA_LIB}/*", str(LEADER_MOVE), self.bootstrap, group, *prefixes],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"LeaderMove failed:\n{result.stderr[-3000:]}")
        summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return summary

    def open_transactions(self, prefix: str) -> list[str]:
        """Partitions of the topics named `prefix*` whose last stable offset is behind the end.

        An open transaction holds every reader of committed records (the worker, the
        projection, the harness's observer) at its first record, while a lag measured
        against the stable offset reads zero: a drain that times out with idle workers and
        no lag is checked for one. `topic[partition]: stable < end` per partition.
        """
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        metadata = admin.list_topics(timeout=15)
        partitions = [
            TopicPartition(name, number)
            for name, topic in metadata.topics.items()
            if name.startswith(prefix)
            for number in topic.partitions
        ]
        if not partitions:
            return []

        def ends(level: IsolationLevel) -> dict[tuple[str, int], int]:
            latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
            futures = admin.list_offsets(dict.fromkeys(partitions, latest), isolation_level=level)
            return {
                (tp.topic, tp.partition): future.result(timeout=60).offset
                for tp, future in futures.items()
            }

        stable, end = ends(IsolationLevel.READ_COMMITTED), ends(IsolationLevel.READ_UNCOMMITTED)
        return [
            f"{topic}[{partition}]: {stable[(topic, partition)]} < {end[(topic, partition)]}"
            for topic, partition in sorted(end)
            if stable[(topic, partition)] < end[(topic, partition)]
        ]
