"""Which librdkafka errors mean a record can never be written as it is.

Such a record is rejected (the caller dead-letters it); every other error is transient
and the same write is tried again. An unknown topic counts as transient: it may be
created a moment later (a new queue's topic), while an invalid name never becomes valid.
"""

from __future__ import annotations

from confluent_kafka import KafkaError

from kafkaio.errors import PublishError, RecordsRejectedError

PERMANENT_CODES = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # over message.max.bytes (client) or the topic's limit
        KafkaError.RECORD_LIST_TOO_LARGE,  # the batch holding it is over the broker's limit
        KafkaError.TOPIC_EXCEPTION,  # invalid topic name
        KafkaError.INVALID_RECORD,  # the broker's validation refused the record
        KafkaError._INVALID_ARG,  # produce() refused the arguments themselves
    }
)


def is_permanent(error: KafkaError) -> bool:
    """Whether the record that got `error` can never be written as it is."""
    return error.code() in PERMANENT_CODES


def describe(error: KafkaError) -> str:
    """A short reason naming the error: `MSG_SIZE_TOO_LARGE: Broker: Message size too large`."""
    return f"{error.name()}: {error.str()}"


class BatchFailures:
    """The failures of one batch's records, and the one error they add up to."""

    def __init__(self) -> None:
        self.rejected: dict[int, str] = {}
        self.transient: str | None = None

    def add(self, index: int, error: KafkaError | None, failure: str) -> None:
        """Record number `index` failed: rejected when `error` is permanent, else transient."""
        if error is not None and is_permanent(error):
            self.rejected[index] = describe(error)
        elif self.transient is None:
            self.transient = failure

    def error(self) -> PublishError | None:
        """`RecordsRejectedError` if any record was rejected, else `PublishError`, or None."""
        if self.rejected:
            return RecordsRejectedError(self.rejected, transient=self.transient)
        if self.transient is not None:
            return PublishError(self.transient)
        return None
