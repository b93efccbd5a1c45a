"""`/readyz`: a worker is ready only once it holds the state of every partition it owns."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import TopicPartition

from streams.readiness import readiness


@dataclass
class Store:
    source_topic: str
    partitions: frozenset[int]


THREADED = "t.messages.threaded"
RESOLVED = "t.messages.resolved"
ASSIGNED = [TopicPartition(topic, p) for topic in (THREADED, RESOLVED, "t.inbound") for p in (0, 1)]


def test_assigned_partitions_whose_state_is_still_restoring_are_not_ready() -> None:
    cases = Store(THREADED, frozenset({0}))
    customers = Store(RESOLVED, frozenset({0, 1}))
    answer = readiness(ASSIGNED, False, [cases, customers], {})
    assert (answer.status, answer.code) == ("restoring", 503)
    assert answer.body["reason"] == f"restoring the state of {THREADED}-1"


def test_ready_once_every_assigned_partition_is_held() -> None:
    held = frozenset({0, 1, 7})  # held beyond the assignment: not this check's business
    answer = readiness(ASSIGNED, False, [Store(THREADED, held), Store(RESOLVED, held)], {})
    assert (answer.status, answer.code) == ("ready", 200)
    assert answer.body == {"status": "ready", "partitions": 6}


def test_no_partitions_or_a_rebalance_is_starting_and_a_stall_says_so_first() -> None:
    held = [Store(THREADED, frozenset({0, 1})), Store(RESOLVED, frozenset({0, 1}))]
    assert readiness([], False, held, {}).status == "starting"
    assert readiness(ASSIGNED, True, held, {}).status == "starting"
    stalled = readiness(ASSIGNED, False, [Store(THREADED, frozenset())], {"cases": 42.0})
    assert (stalled.status, stalled.code) == ("stalled", 503)
    assert stalled.body["reason"] == "stage cases made no progress for 42s with input waiting"
