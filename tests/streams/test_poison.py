"""Poison records: every stage dead-letters what it cannot process and goes on.

The worker's stages run against an in-memory publisher and state held without a
changelog. Each test puts a poison record between good ones in one batch: the poison
becomes a dead letter (stage, reason, source, original bytes), the good records and their
state changes are all kept, and the same batch run again writes the same letters.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from rules import compile_sources
from schemas import AgentAction, AgentActionType, Case, DeadLetter, InboundMessage, Topics
from streams.case_state import CaseState
from streams.deadlines import DeadlineIndex
from streams.output import OutputRecord, Publisher, ReliableWriter
from streams.pipeline import Pipeline
from streams.rebalance import case_store
from streams.records import ResolvedMessage, ThreadedMessage
from streams.state_store import ChangelogState
from streams.threader import CustomerState
from streams.worker_config import RuleSetHolder, WorkerConfig

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
TOPICS = Topics("poison.")
RULES = """
version: 1
queues: {general: {}, tier2: {}}
routes: {queue: general, priority: normal}
"""


class MemoryPublisher:
    """Keeps every record it is given, as acknowledged."""

    def __init__(self) -> None:
        self.records: list[OutputRecord] = []

    async def publish(self, records: Sequence[OutputRecord]) -> None:
        self.records.extend(records)


def deep_metadata(levels: int) -> dict[str, Any]:
    """`{"a": {"a": ...}}`, `levels` objects deep."""
    nested: dict[str, Any] = {}
    for _ in range(levels - 1):
        nested = {"a": nested}
    return nested


def inbound(external_id: str, sender: str = "ana@example.com", **extra: Any) -> InboundMessage:
    return InboundMessage(
        channel="email", external_id=external_id, sender=sender, text="hello", sent_at=T0, **extra
    )


def event(topic: str, key: bytes | None, value: bytes, offset: int, partition: int = 0) -> Any:
    message = SimpleNamespace(
        topic=topic,
        key=key,
        value=value,
        partition=partition,
        offset=offset,
        timestamp=T0.timestamp() + offset,
    )
    return SimpleNamespace(message=message)


class Stages:
    """The three stages over in-memory state."""

    def __init__(self, publisher: Publisher | None = None) -> None:
        config = WorkerConfig(broker_url="kafka://unused", topics=TOPICS)
        self.publisher = MemoryPublisher()
        self.customers = ChangelogState(
            "customers", TOPICS.state_changelog("customers"), TOPICS.resolved, {}
        )
        self.cases = case_store(config)
        for partition in range(4):
            self.customers.hold(partition, [])
            self.cases.hold(partition, [])
        self.pipeline = Pipeline(
            config,
            RuleSetHolder(compile_sources({"rules.yaml": RULES})),
            ReliableWriter(
                publisher or self.publisher, first_backoff=0.001, dead_letter_topic=TOPICS.dlq
            ),
            self.customers,
            self.cases,
            DeadlineIndex(),
        )

    def on(self, topic: str) -> list[OutputRecord]:
        return [r for r in self.publisher.records if r.topic == topic]

    def letters(self) -> list[DeadLetter]:
        return [DeadLetter.model_validate_json(r.value) for r in self.on(TOPICS.dlq)]


def resolved_record(message: InboundMessage, customer: str = "cus_1") -> bytes:
    resolved = ResolvedMessage(
        customer_id=customer, message=message, ingested_at=T0, identity_evidence="test"
    )
    return resolved.model_dump_json().encode()


def threaded_record(case_id: str, external_id: str) -> bytes:
    threaded = ThreadedMessage(
        case_id=case_id,
        customer_id=f"cus-{case_id}",
        opens_case=True,
        evidence="test",
        message=inbound(external_id),
        ingested_at=T0,
    )
    return threaded.model_dump_json().encode()


def action_record(case_id: str, action_id: str, **fields: Any) -> bytes:
    action = AgentAction(action_id=action_id, case_id=case_id, agent_id="sam", at=T0, **fields)
    return action.model_dump_json().encode()


def deep_resolved_record(external_id: str, levels: int = 200) -> bytes:
    """A resolved record whose message's metadata nests `levels` deep, as raw JSON.

    The contract refuses such metadata at the edge now, so it is written by hand: a record
    published straight to the topic (an older worker, a bug) can still hold it.
    """
    document = json.loads(resolved_record(inbound(external_id)))
    document["message"]["metadata"] = deep_metadata(levels)
    return json.dumps(document).encode()


def invalid_queue_action(case_id: str, action_id: str) -> bytes:
    """A transfer to `Bad Queue`, as raw JSON (the contract refuses to build it)."""
    document = json.loads(
        action_record(case_id, action_id, type=AgentActionType.TRANSFER, queue="tier2")
    )
    document["queue"] = "Bad Queue"
    return json.dumps(document).encode()


def test_deep_metadata_passes_intake_and_is_dead_lettered_by_threading() -> None:
    raw = deep_resolved_record("deep")
    with pytest.raises(ValueError, match="recursion limit"):
        ResolvedMessage.model_validate_json(raw)  # the premise: stage B cannot parse it
    stages = Stages()
    batch = [
        event(TOPICS.resolved, b"cus_1", resolved_record(inbound("m-1")), 10),
        event(TOPICS.resolved, b"cus_1", raw, 11),
        event(TOPICS.resolved, b"cus_1", resolved_record(inbound("m-2")), 12),
    ]
    asyncio.run(stages.pipeline.threading_batch(batch))
    threaded = [ThreadedMessage.model_validate_json(r.value) for r in stages.on(TOPICS.threaded)]
    assert [t.message.external_id for t in threaded] == ["m-1", "m-2"]
    [letter] = stages.letters()
    assert (letter.stage, letter.reason) == ("threading", "invalid_json")
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        TOPICS.resolved,
        0,
        11,
    )
    assert letter.original_bytes() == raw
    assert letter.original_size == len(raw) and not letter.original_omitted
    state = stages.customers.load(0, b"cus_1", CustomerState)
    assert state is not None and set(state.seen) == {"email:m-1", "email:m-2"}


def test_transfer_to_an_invalid_queue_is_dead_lettered_and_the_case_stays() -> None:
    stages = Stages()
    opened = [
        event(TOPICS.threaded, b"C-AAAAAAAAAA", threaded_record("C-AAAAAAAAAA", "a-1"), 1),
        event(TOPICS.threaded, b"C-BBBBBBBBBB", threaded_record("C-BBBBBBBBBB", "b-1"), 2),
    ]
    asyncio.run(stages.pipeline.cases_batch(opened))
    bad = invalid_queue_action("C-AAAAAAAAAA", "act-bad")
    good = action_record("C-BBBBBBBBBB", "act-good", type=AgentActionType.TRANSFER, queue="tier2")
    stages.publisher.records.clear()
    asyncio.run(
        stages.pipeline.cases_batch(
            [
                event(TOPICS.agent_actions, b"C-AAAAAAAAAA", bad, 7),
                event(TOPICS.agent_actions, b"C-BBBBBBBBBB", good, 8),
            ]
        )
    )
    [letter] = stages.letters()
    assert letter.stage == "cases" and letter.reason in ("invalid_action", "unprocessable")
    assert "Bad Queue" in letter.detail
    assert letter.source_topic == TOPICS.agent_actions and letter.source_offset == 7
    assert letter.original_bytes() == bad
    moved = [Case.model_validate_json(r.value) for r in stages.on(TOPICS.queue("tier2"))]
    assert [case.case_id for case in moved] == ["C-BBBBBBBBBB"]
    a = stages.cases.load(0, b"C-AAAAAAAAAA", CaseState)
    b = stages.cases.load(0, b"C-BBBBBBBBBB", CaseState)
    assert a is not None and a.queue == "general" and a.processed_actions == []
    assert b is not None and b.queue == "tier2"


def test_an_unexpected_error_in_intake_is_contained_per_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stages = Stages()
    directory = stages.pipeline.identity
    resolve = directory.resolve

    def fragile(message: InboundMessage, at: datetime) -> Any:
        if message.sender == "crash@example.com":
            raise RecursionError("maximum recursion depth exceeded")
        return resolve(message, at)

    monkeypatch.setattr(directory, "resolve", fragile)
    records = [
        inbound("i-1", sender="ana@example.com"),
        inbound("i-2", sender="crash@example.com"),
        inbound("i-3", sender="bo@example.com"),
    ]
    batch = [
        event(TOPICS.inbound, m.sender.encode(), m.model_dump_json().encode(), n)
        for n, m in enumerate(records)
    ]
    asyncio.run(stages.pipeline.intake_batch(batch))
    resolved = [ResolvedMessage.model_validate_json(r.value) for r in stages.on(TOPICS.resolved)]
    assert [r.message.external_id for r in resolved] == ["i-1", "i-3"]
    [letter] = stages.letters()
    assert (letter.stage, letter.reason, letter.source_offset) == ("intake", "unprocessable", 1)
    assert "RecursionError" in letter.detail


def test_records_without_a_key_are_dead_lettered_by_keyed_stages() -> None:
    stages = Stages()
    asyncio.run(
        stages.pipeline.threading_batch(
            [event(TOPICS.resolved, None, resolved_record(inbound("k-1")), 3)]
        )
    )
    asyncio.run(
        stages.pipeline.cases_batch(
            [event(TOPICS.threaded, None, threaded_record("C-CCCCCCCCCC", "c-1"), 4)]
        )
    )
    assert [(d.stage, d.source_offset) for d in stages.letters()] == [
        ("threading", 3),
        ("cases", 4),
    ]


def test_a_replay_writes_the_same_dead_letters() -> None:
    raw = deep_resolved_record("deep")
    written = []
    for _ in range(2):
        stages = Stages()
        asyncio.run(stages.pipeline.threading_batch([event(TOPICS.resolved, b"c", raw, 5)]))
        written.append([(r.key, r.value) for r in stages.on(TOPICS.dlq)])
    assert written[0] == written[1] and len(written[0]) == 1
    assert json.loads(written[0][0][1])["letter_id"]


def test_a_record_on_another_partition_than_its_case_in_the_batch_is_dead_lettered() -> None:
    """An action produced with another partitioner must not split its case between partitions.

    The chaos harness's agents once produced with librdkafka's default partitioner: a batch
    holding a case's message (partition 1) and its claim (partition 2) saved the case's
    state under partition 2 too, and the two copies fired the same SLA warning twice.
    """
    stages = Stages()
    case = b"C-DDDDDDDDDD"
    claim = action_record("C-DDDDDDDDDD", "act-claim", type=AgentActionType.CLAIM)
    asyncio.run(
        stages.pipeline.cases_batch(
            [
                event(TOPICS.threaded, case, threaded_record("C-DDDDDDDDDD", "d-1"), 5, 1),
                event(TOPICS.agent_actions, case, claim, 6, 2),
            ]
        )
    )
    [letter] = stages.letters()
    assert (letter.stage, letter.reason, letter.source_offset) == ("cases", "misrouted", 6)
    assert "murmur2" in letter.detail
    assert stages.cases.load(2, case, CaseState) is None
    held = stages.cases.load(1, case, CaseState)
    assert held is not None and held.claimed_by is None and held.processed_actions == []


def test_a_record_of_a_partition_revoked_during_the_batch_is_left_to_its_next_owner() -> None:
    """A rebalance may take a partition while a batch holding its records is under way
    (the assignment runs on a thread); the worker once died there with `KeyError`."""
    stages = Stages()
    stages.cases.assign([0, 1, 2])  # partition 3 goes to another worker
    case = b"C-EEEEEEEEEE"
    asyncio.run(
        stages.pipeline.cases_batch(
            [
                event(TOPICS.threaded, case, threaded_record("C-EEEEEEEEEE", "e-1"), 9, 3),
                event(TOPICS.threaded, b"C-FFFFFFFFFF", threaded_record("C-FFFFFFFFFF", "f-1"), 4),
            ]
        )
    )
    assert stages.letters() == []
    opened = [r.key for r in stages.on(TOPICS.case_events) if b"case.opened" in r.value]
    assert opened == [b"C-FFFFFFFFFF"]
