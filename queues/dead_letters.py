"""Dead letters from the case store's consumers, written synchronously before a commit.

The projections run in plain threads: they hand the records they cannot apply to a
`KafkaDeadLetters`, which produces each letter to `messages.dlq` and returns only once the
broker acknowledged all of them (raising otherwise, so the batch is read again and its
letters, deterministic, are written again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kafkaio import PublishError, Record
from kafkaio.blocking import BlockingProducer
from schemas import DeadLetter


class KafkaDeadLetters:
    """Writes (key, letter) pairs to the dead-letter topic and waits for the broker."""

    def __init__(
        self, producer_config: Mapping[str, Any], topic: str, timeout_seconds: float = 30.0
    ) -> None:
        self.topic = topic
        self._producer = BlockingProducer(dict(producer_config))
        self._timeout = timeout_seconds

    def __call__(self, letters: Sequence[tuple[bytes | None, DeadLetter]]) -> None:
        """Write the letters; raise `RuntimeError` unless every one was acknowledged."""
        records = [
            Record(self.topic, key, letter.model_dump_json().encode("utf-8"))
            for key, letter in letters
        ]
        try:
            self._producer.send(records, timeout_seconds=self._timeout)
        except PublishError as error:
            raise RuntimeError(f"dead letters not written: {error}") from error

    def close(self) -> None:
        """Deliver what is queued and release the producer."""
        self._producer.close(self._timeout)
