"""The rules and identity followers set aside records they cannot take, on the real broker.

A bad record neither stops a worker from starting (reading the topic to its end) nor ends
the following: it becomes a dead letter of stage `rules-watch` or `identity-watch`, and the
records after it are applied.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from connectors.publisher import KafkaPublisher
from schemas import DeadLetter, IdentityKind, IdentityRecord, RuleSetRecord
from streams.identity import IdentityDirectory
from streams.identity_watch import IdentityWatcher
from streams.poison import ThreadDeadLetters
from streams.rules_watch import RulesWatcher
from tests.kafka_support import consume_until, create_topics, produce

GOOD_RULES = "version: 1\nqueues: {general: {}}\nroutes: {queue: general, priority: normal}\n"
BROKEN_RULES = "version: 1\nqueues: {general: {}}\nroutes: {queue: nowhere}\n"


def link(handle: str) -> bytes:
    record = IdentityRecord(
        kind=IdentityKind.LINK,
        customer_id=f"cus-{handle}",
        handle=handle,
        reason="test",
        at=datetime.now(UTC),
    )
    return record.model_dump_json().encode()


def letters(bootstrap: str, dlq: str, count: int) -> list[DeadLetter]:
    return [
        DeadLetter.model_validate_json(r.value or b"")
        for r in consume_until(bootstrap, dlq, count, timeout=30)
    ]


def test_identity_follower_dead_letters_bad_records_and_goes_on(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic, dlq = f"{topic_prefix}customers.identity", f"{topic_prefix}messages.dlq"
    create_topics(kafka_bootstrap, [topic, dlq], partitions=1)
    produce(kafka_bootstrap, topic, [(b"h1", b"{not json"), (b"h2", link("email:a@x.io"))])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    directory = IdentityDirectory()
    watcher = IdentityWatcher(
        {"bootstrap.servers": kafka_bootstrap},
        topic,
        directory,
        ThreadDeadLetters(publisher, dlq, "identity-watch", 900_000),
    )
    try:
        assert watcher.load_current() == 1
        watcher.start()
        produce(kafka_bootstrap, topic, [(b"h3", b'{"kind": "link"}'), (b"h4", link("sms:+1"))])
        deadline = time.monotonic() + 30
        while "sms:+1" not in directory.links:
            assert time.monotonic() < deadline, "the follower stopped at the bad record"
            time.sleep(0.1)
    finally:
        watcher.stop()
        publisher.close()
    found = letters(kafka_bootstrap, dlq, 2)
    assert [(d.stage, d.source_offset, d.reason) for d in found] == [
        ("identity-watch", 0, "invalid_json"),
        ("identity-watch", 2, "invalid_record"),
    ]
    assert found[0].original_bytes() == b"{not json"
    assert "email:a@x.io" in directory.links


def test_rules_follower_dead_letters_a_set_that_does_not_compile(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic, dlq = f"{topic_prefix}rules", f"{topic_prefix}messages.dlq"
    create_topics(kafka_bootstrap, [topic, dlq], partitions=1)

    def published(source: str) -> bytes:
        record = RuleSetRecord(
            version="v", sources={"rules.yaml": source}, published_at=datetime.now(UTC)
        )
        return record.model_dump_json().encode()

    produce(
        kafka_bootstrap,
        topic,
        [(b"rules", published(GOOD_RULES)), (b"rules", published(BROKEN_RULES))],
    )
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    watcher = RulesWatcher(
        {"bootstrap.servers": kafka_bootstrap},
        topic,
        lambda _ruleset: None,
        ThreadDeadLetters(publisher, dlq, "rules-watch", 900_000),
    )
    try:
        current = watcher.load_current()
    finally:
        watcher.stop()
        publisher.close()
    assert current is not None and list(current.queues) == ["general"]
    [letter] = letters(kafka_bootstrap, dlq, 1)
    assert (letter.stage, letter.source_offset, letter.reason) == (
        "rules-watch",
        1,
        "unprocessable",
    )
    assert "nowhere" in letter.detail
