"""On the real broker: a record over the limit becomes a dead letter and the batch is written."""

from __future__ import annotations

from connectors.publisher import KafkaPublisher
from schemas import DeadLetter
from streams.output import OutputRecord, ReliableWriter
from tests.kafka_support import consume_until, create_topics


async def test_an_oversize_record_is_dead_lettered_and_the_rest_is_written(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    target, dlq = f"{topic_prefix}queue.general", f"{topic_prefix}messages.dlq"
    create_topics(kafka_bootstrap, [target, dlq], partitions=1)
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    writer = ReliableWriter(publisher, dead_letter_topic=dlq)
    try:
        await writer.write(
            [
                OutputRecord(target, b"C-1", b"a" * 1_200_000),  # over the broker's 1 MB
                OutputRecord(target, b"C-2", b"small"),
            ],
            "cases",
        )
    finally:
        publisher.close()
    [written] = consume_until(kafka_bootstrap, target, 1, timeout=30)
    assert written.value == b"small"
    [letter_record] = consume_until(kafka_bootstrap, dlq, 1, timeout=30)
    letter = DeadLetter.model_validate_json(letter_record.value or b"")
    assert (letter.stage, letter.reason, letter.original_size) == (
        "cases",
        "record_too_large",
        1_200_000,
    )
    assert letter.original_omitted and letter_record.key == b"C-1"
