"""Writing one record and waiting for Kafka's acknowledgement, patiently, until told to stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = logging.getLogger(__name__)

# answers that will not change when the same record is written again
_PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    }
)


class Stopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The service is stopping in the middle of a record: leave its offset uncommitted."""


class RecordRejected(Exception):  # noqa: N818 - named for what happened to the record
    """Kafka refused a record for good (too large, invalid topic, not authorised)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a delivery is tried before it is given up."""

    attempts: int = 6
    first_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): 1, 2, 4, … capped."""
        return min(self.first_backoff_seconds * 2.0 ** (attempt - 1), self.max_backoff_seconds)


class AckedWriter:
    """Produces a record and returns only once Kafka acknowledged it (retrying until then)."""

    def __init__(self, producer: Producer, retry: RetryPolicy, stop_event: threading.Event):
        self.producer = producer
        self.retry = retry
        self.stop_event = stop_event

    def write(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        """Write and wait; raises Stopped when asked to stop first, RecordRejected for good."""
        attempt = 0
        while True:
            attempt += 1
            failures: list[KafkaError] = []
            extra: dict[str, Any] = {} if partition is None else {"partition": partition}
            produced = False
            try:
                self.producer.produce(
                    topic,
                    key=key,
                    value=value,
                    headers=list(headers),
                    on_delivery=partial(_collect_error, failures),
                    **extra,
                )
                produced = True
            except KafkaException as exc:  # refused before it left (e.g. over message.max.bytes)
                failures.append(exc.args[0])
            except BufferError as exc:
                log.warning("replies: producer queue full (%s)", exc)
            if produced and self.producer.flush(30) == 0 and not failures:
                return
            if any(error.code() in _PERMANENT for error in failures):
                raise RecordRejected(f"{topic}: {failures[0]}")
            wait = self.retry.backoff(attempt)
            log.warning(
                "replies: record to %s not acknowledged (%s); retry in %.1fs",
                topic,
                [str(error) for error in failures],
                wait,
            )
            if self.stop_event.wait(wait):
                raise Stopped


def _collect_error(
    sink: list[KafkaError], error: KafkaError | None, _message: Message[Any, Any]
) -> None:
    if error is not None:
        sink.append(error)
