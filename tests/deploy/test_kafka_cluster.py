"""kafka.sh's cluster profile: three KRaft nodes on one machine survive the loss of a leader.

The fault-injection runs (`make chaos`) stand on this: topics replicated three times with
`min.insync.replicas` 2, so an acknowledged write outlives any one broker. The cluster runs on
its own ports and in a private data dir; it never touches the shared broker on 9092.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from confluent_kafka.cimpl import NewTopic

from chaos.cluster import COORDINATOR_TOPICS, Cluster
from escalator.topic_admin import core_topics, ensure_topics
from kafkaio.admin import Replication, create_missing_topics
from kafkaio.faust_config import faust_internal_topics
from kafkaio.settings import KafkaSettings
from tests.kafka_support import topic_replication

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
CLUSTER_PORT = os.environ.get("ESCALATOR_TEST_CLUSTER_PORT", "19092")

pytestmark = pytest.mark.kafka


def _kafka_sh(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        ["bash", str(KAFKA_SH), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"kafka.sh {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of a running 3-node cluster; stopped when the module's tests are done."""
    env = {
        **os.environ,
        "KAFKA_CLUSTER_PORT": CLUSTER_PORT,
        "KAFKA_CLUSTER_DIR": str(tmp_path_factory.mktemp("kafka-cluster")),
    }
    try:
        _kafka_sh(env, "cluster-start", timeout=600)
        yield env
    finally:
        _kafka_sh(env, "cluster-stop", timeout=120)


def _leader_and_isr(admin: AdminClient, topic: str) -> tuple[int, list[int], list[int]]:
    partition = admin.list_topics(topic=topic, timeout=10).topics[topic].partitions[0]
    return partition.leader, list(partition.replicas), list(partition.isrs)


def _wait(condition: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if callable(condition) and condition():
                return
        except KeyError:  # a new topic's partitions are not in the metadata yet
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_three_nodes_replicate_and_survive_a_killed_leader(cluster: dict[str, str]) -> None:
    bootstrap = _kafka_sh(cluster, "cluster-bootstrap")
    assert len(bootstrap.split(",")) == 3
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert len(admin.list_topics(timeout=10).brokers) == 3

    topic = f"cluster-{uuid.uuid4().hex[:8]}"
    for future in admin.create_topics([NewTopic(topic, num_partitions=1)]).values():
        future.result(30)  # the brokers' defaults: replication 3, min.insync.replicas 2
    _wait(lambda: len(_leader_and_isr(admin, topic)[2]) == 3, "three in-sync replicas")
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(30)
    assert configs["min.insync.replicas"].value == "2"

    leader, replicas, _ = _leader_and_isr(admin, topic)
    assert sorted(replicas) == [1, 2, 3]
    _kafka_sh(cluster, "node-kill", str(leader))
    try:
        producer = Producer(
            {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True}
        )
        failures: list[object] = []
        for i in range(500):
            producer.produce(
                topic,
                key=str(i).encode(),
                value=b"acknowledged",
                on_delivery=lambda error, _msg: failures.append(error) if error else None,
            )
        assert producer.flush(120) == 0
        assert failures == []
        new_leader, _, isr = _leader_and_isr(admin, topic)
        assert new_leader != leader
        assert leader not in isr

        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "enable.auto.commit": False}
        )
        consumer.assign([TopicPartition(topic, 0, 0)])
        keys: set[bytes] = set()
        deadline = time.monotonic() + 60
        while len(keys) < 500 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                keys.add(message.key() or b"")
        consumer.close()
        assert len(keys) == 500
    finally:
        _kafka_sh(cluster, "node-start", str(leader), timeout=300)
    _wait(lambda: len(_leader_and_isr(admin, topic)[2]) == 3, "the killed node back in sync")


def test_escalator_creates_its_topics_with_three_replicas_and_min_insync_two(
    cluster: dict[str, str],
) -> None:
    """Issue 11.5 on three brokers: the default factor is 3, min.insync.replicas 2, set on
    each topic Escalator (and the worker for faust) creates, not inherited from the brokers."""
    bootstrap = _kafka_sh(cluster, "cluster-bootstrap")
    prefix = f"r{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(KAFKA_BOOTSTRAP_SERVERS=bootstrap, ESCALATOR_TOPIC_PREFIX=prefix)
    assert kafka.replication_factor is None  # nothing configured: picked from the cluster
    replication = ensure_topics(kafka, core_topics(kafka))
    assert replication == Replication(factor=3, min_insync=2)
    leader_topic = faust_internal_topics(f"{prefix}worker")
    create_missing_topics(kafka.librdkafka(), leader_topic, replication.factor)
    names = [*core_topics(kafka), *leader_topic]
    assert topic_replication(bootstrap, names) == dict.fromkeys(names, (3, "2"))


def test_the_leader_move_moves_every_leader_and_the_group_coordinator(
    cluster: dict[str, str],
) -> None:
    """chaos's `leader-move` fault does what it says: after it, every partition of the topics
    it names has another leader, its preferred one, and the group's coordinator moved."""
    bootstrap = _kafka_sh(cluster, "cluster-bootstrap")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    prefix = f"move-{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}events"
    for future in admin.create_topics([NewTopic(topic, num_partitions=6)]).values():
        future.result(30)
    _wait(
        lambda: all(
            len(p.isrs) == 3
            for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
        ),
        "every replica in sync",
    )
    group = f"{prefix}worker"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    consumer.close()

    def leaders(name: str) -> dict[int, int]:
        partitions = admin.list_topics(name, timeout=10).topics[name].partitions
        return {number: p.leader for number, p in partitions.items()}

    def coordinator() -> int:
        # a fresh client each time: librdkafka's admin keeps asking the coordinator it
        # found first, which answers NOT_COORDINATOR once it moved
        deadline = time.monotonic() + 60
        while True:
            fresh = AdminClient({"bootstrap.servers": bootstrap})
            try:
                described = fresh.describe_consumer_groups([group])[group].result(30)
                return int(described.coordinator.id)
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    before, offsets_before, coordinator_before = (
        leaders(topic),
        leaders("__consumer_offsets"),
        coordinator(),
    )
    moved = Cluster(Path(cluster["KAFKA_CLUSTER_DIR"]), port=int(CLUSTER_PORT)).move_leaders(
        group, [prefix, *COORDINATOR_TOPICS]
    )

    after = leaders(topic)
    assert all(after[p] != before[p] for p in before), (before, after)
    offsets_after = leaders("__consumer_offsets")
    assert all(offsets_after[p] != offsets_before[p] for p in offsets_before)
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    assert all(p.leader == p.replicas[0] for p in partitions.values())  # the preferred one
    assert coordinator() != coordinator_before
    assert moved["before"]["group"] == coordinator_before
    assert moved["after"]["group"] == coordinator()
    assert moved["leaders_moved"] == moved["partitions"] >= 6 + len(offsets_before)
