"""Writing one record and waiting for Kafka's acknowledgement, patiently, until told to stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from kafkaio import PublishError, Record, RecordsRejectedError
from kafkaio.blocking import BlockingProducer

log = logging.getLogger(__name__)


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

    def wait_after(self, attempt: int, asked: float | None = None) -> float:
        """The backoff after attempt `attempt`, or longer when the far end `asked` for it (a
        429's `Retry-After`), but never past `max_backoff_seconds`: one rate-limited reply must
        not hold up every reply behind it for the provider's whole window."""
        return max(self.backoff(attempt), min(asked or 0.0, self.max_backoff_seconds))


class AckedWriter:
    """Produces a record and returns only once Kafka acknowledged it (retrying until then)."""

    def __init__(
        self, producer: BlockingProducer, retry: RetryPolicy, stop_event: threading.Event
    ) -> None:
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
        record = Record(topic, key, value, tuple(headers), partition)
        attempt = 0
        while True:
            attempt += 1
            try:
                self.producer.send([record])
            except RecordsRejectedError as exc:
                raise RecordRejected(f"{topic}: {exc}") from exc
            except PublishError as exc:
                wait = self.retry.backoff(attempt)
                log.warning(
                    "replies: record to %s not acknowledged (%s); retry in %.1fs", topic, exc, wait
                )
                if self.stop_event.wait(wait):
                    raise Stopped from exc
            else:
                return
