"""The worker's writer: transient failures are retried, records that can never be written
become dead letters (with a reference instead of their bytes) and the batch goes on."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from kafkaio import PublishError, RecordsRejectedError
from schemas import DeadLetter
from streams.output import MAX_RECORD_BYTES, OutputRecord, ReliableWriter

DLQ = "t.messages.dlq"


class ScriptedPublisher:
    """Fails the first calls as scripted, then acknowledges; keeps what was acknowledged."""

    def __init__(self, *failures: Exception | None) -> None:
        self.failures = list(failures)
        self.calls: list[list[OutputRecord]] = []
        self.written: list[OutputRecord] = []

    async def publish(self, records: Sequence[OutputRecord]) -> None:
        self.calls.append(list(records))
        failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, RecordsRejectedError):
            self.written.extend(r for i, r in enumerate(records) if i not in failure.rejected)
            raise failure
        if failure is not None:
            raise failure
        self.written.extend(records)


def writer(publisher: ScriptedPublisher, **options: int) -> ReliableWriter:
    return ReliableWriter(publisher, first_backoff=0.001, dead_letter_topic=DLQ, **options)


def test_the_default_limit_is_safely_under_the_brokers() -> None:
    assert MAX_RECORD_BYTES <= 950_000


def test_a_record_over_the_limit_is_replaced_by_a_referencing_dead_letter() -> None:
    huge = OutputRecord("t.queue.general", b"C-1", b"x" * 2_000_000)
    small = OutputRecord("t.cases.events", b"C-1", b"{}")
    publisher = ScriptedPublisher()
    asyncio.run(writer(publisher).write([huge, small], "cases"))
    assert publisher.written[1] == small
    letter_record = publisher.written[0]
    assert letter_record.topic == DLQ and letter_record.key == b"C-1"
    assert letter_record.size < MAX_RECORD_BYTES
    letter = DeadLetter.model_validate_json(letter_record.value)
    assert (letter.stage, letter.reason) == ("cases", "record_too_large")
    assert letter.original_omitted and letter.original_b64 == ""
    assert letter.original_size == 2_000_000
    assert letter.original_sha256 == hashlib.sha256(huge.value).hexdigest()
    assert (letter.source_topic, letter.source_offset) == ("t.queue.general", -1)


def test_a_record_the_publisher_rejects_is_dead_lettered_and_not_retried() -> None:
    records = [OutputRecord("t.a", b"k", b"1"), OutputRecord("Bad Queue", b"k", b"2")]
    rejected = RecordsRejectedError({1: "Broker: Invalid topic"})
    publisher = ScriptedPublisher(rejected)
    asyncio.run(writer(publisher).write(records, "cases"))
    assert len(publisher.calls) == 2  # the batch, then only its dead letter
    assert [r.topic for r in publisher.calls[1]] == [DLQ]
    assert [r.topic for r in publisher.written] == ["t.a", DLQ]
    letter = DeadLetter.model_validate_json(publisher.written[1].value)
    assert (letter.reason, letter.source_topic) == ("invalid_topic", "Bad Queue")
    assert letter.original_bytes() == b"2"


def test_a_rejection_with_a_transient_failure_writes_the_others_again() -> None:
    records = [OutputRecord("t.a", b"k", b"1"), OutputRecord("t.b", b"k", b"2")]
    partly = RecordsRejectedError({0: "Broker: Message size too large"}, transient="timed out")
    publisher = ScriptedPublisher(partly)
    asyncio.run(writer(publisher).write(records))
    assert [r.topic for r in publisher.calls[1]] == [DLQ, "t.b"]
    letter = DeadLetter.model_validate_json(publisher.calls[1][0].value)
    assert letter.reason == "record_too_large"


def test_transient_failures_are_retried_until_written() -> None:
    record = OutputRecord("t.a", b"k", b"1")
    publisher = ScriptedPublisher(PublishError("broker down"), PublishError("broker down"))
    asyncio.run(writer(publisher).write([record]))
    assert len(publisher.calls) == 3 and publisher.written == [record]


def test_a_refused_dead_letter_is_dropped_rather_than_retried_forever() -> None:
    letter = OutputRecord(DLQ, b"k", b'{"reason":"x"}')
    publisher = ScriptedPublisher(RecordsRejectedError({0: "Broker: Invalid topic"}))
    asyncio.run(writer(publisher).write([letter]))
    assert len(publisher.calls) == 1
