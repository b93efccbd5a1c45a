"""The presence projection: applies `agents.presence` records to the agents' rows.

Presence is an event like every other write: the desk publishes an `AgentPresence`
record (keyed by agent id, on a compacted topic) and this projection writes it to the
store. Records of one agent share a partition and are applied in log order, each batch
in one transaction, with the offsets committed only after it. A redelivered batch is a
suffix of the same log and ends in the same state. `escalator db rebuild` replays the
topic from the start (`catch_up`), so presence is restored with the cases.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, TopicPartition
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from kafkaio import clients
from kafkaio.catchup import EndOffsets
from queues.models import AgentRow
from queues.projection import DeadLetterSink
from queues.writer import is_transient
from schemas import AgentPresence, DeadLetter

log = logging.getLogger(__name__)

_BATCH = 500
_FILL_SECONDS = 0.01


def apply_presence(session: Session, record: AgentPresence) -> bool:
    """Apply one record to its agent's row; False if skipped (unknown agent, stale condition)."""
    row = session.get(AgentRow, record.agent_id)
    if row is None:
        log.warning("presence of unknown agent %s skipped", record.agent_id)
        return False
    expected = record.expected_presence_id
    if expected is not None and row.presence_id != expected:
        return False  # the agent's presence changed after the decision: it stands
    if row.presence != record.presence.value:
        row.presence = record.presence.value
        row.presence_at = record.at
    row.presence_id = record.presence_id
    return True


class PresenceProjection:
    """Consumes `agents.presence` into the store: forever (`start`) or to the end (`catch_up`)."""

    def __init__(
        self,
        *,
        kafka_config: Mapping[str, Any],
        topic: str,
        session_factory: sessionmaker[Session],
        group_id: str | None = None,
        poll_seconds: float = 0.2,
        dead_letters: DeadLetterSink | None = None,
    ) -> None:
        """Subscribe; records it cannot take go to `dead_letters` when given (else logged)."""
        self.topic = topic
        self._dead_letters = dead_letters
        self._sessions = session_factory
        self._poll_seconds = poll_seconds
        self._consumer = clients.consumer(
            kafka_config,
            # one group per deployment: each agent's records have exactly one applier
            group_id or f"{topic}.projection",
            {"auto.offset.reset": "earliest", "enable.partition.eof": True},
        )
        self._consumer.subscribe([topic])
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Apply records in a background thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="presence-projection", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._step(None)
            except Exception:  # the batch was not committed: it is read again
                log.exception("presence batch failed; retrying")
                self._stopping.wait(1.0)

    def catch_up(self, timeout_seconds: float = 60.0) -> int:
        """Apply everything the topic held when called (this consumer must own every partition)."""
        deadline = time.monotonic() + timeout_seconds
        target = EndOffsets.measure(self._consumer, self.topic, 10.0)
        handled = 0
        while not target.reached():
            if time.monotonic() > deadline:
                raise TimeoutError(f"presence of {self.topic} not caught up: {target.behind()}")
            handled += self._step(target)
        return handled

    def _step(self, target: EndOffsets | None) -> int:
        # wait for a first record, then only briefly for more: a lone change applies at once
        first = self._consumer.poll(self._poll_seconds)
        if first is None:
            return 0
        messages = [first, *self._consumer.consume(_BATCH - 1, timeout=_FILL_SECONDS)]
        records: list[Message[Any, Any]] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                partition, offset = message.partition(), message.offset()
                if target is not None and partition is not None and offset is not None:
                    target.advance(partition, offset)
            elif error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                log.warning("consumer error on %s: %s", self.topic, error)
        if not records:
            return 0
        self._apply(records)
        offsets: dict[int, int] = {}
        for message in records:
            partition, offset = message.partition(), message.offset()
            if partition is not None and offset is not None:
                offsets[partition] = max(offsets.get(partition, 0), offset + 1)
                if target is not None:
                    target.advance(partition, offset + 1)
        self._consumer.commit(
            offsets=[TopicPartition(self.topic, p, o) for p, o in sorted(offsets.items())],
            asynchronous=False,
        )
        return len(records)

    def _apply(self, records: list[Message[Any, Any]]) -> None:
        """Apply a batch in one transaction; set aside the records that cannot be applied.

        A transient database error raises (the batch is read again); any other failure is
        retried record by record, so one bad record does not hold up the others.
        """
        parsed: list[tuple[Message[Any, Any], AgentPresence]] = []
        refused: list[tuple[Message[Any, Any], str, str]] = []
        for message in records:
            try:
                parsed.append((message, AgentPresence.model_validate_json(message.value() or b"")))
            except ValidationError as error:
                log.warning(
                    "malformed presence record at offset %s skipped: %s", message.offset(), error
                )
                refused.append((message, "malformed", str(error)))
        try:
            with self._sessions.begin() as session:
                for _message, record in parsed:
                    apply_presence(session, record)
        except Exception as error:
            if is_transient(error):
                raise  # the batch is read again
            refused.extend(self._one_by_one(parsed))
        if refused and self._dead_letters is not None:
            self._dead_letters([self._letter(*item) for item in refused])

    def _one_by_one(
        self, parsed: list[tuple[Message[Any, Any], AgentPresence]]
    ) -> list[tuple[Message[Any, Any], str, str]]:
        """Apply each record in its own transaction; those the database refuses are returned."""
        failed: list[tuple[Message[Any, Any], str, str]] = []
        for message, record in parsed:
            try:
                with self._sessions.begin() as session:
                    apply_presence(session, record)
            except Exception as error:
                if is_transient(error):
                    raise
                log.exception("presence record at offset %s cannot be applied", message.offset())
                failed.append((message, "failed", f"{type(error).__name__}: {error}"))
        return failed

    def _letter(
        self, message: Message[Any, Any], reason: str, detail: str
    ) -> tuple[bytes | None, DeadLetter]:
        _kind, millis = message.timestamp()
        key: bytes | None = message.key()
        letter = DeadLetter.of(
            stage="presence-projection",
            reason=reason,
            detail=detail,
            topic=self.topic,
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=key,
            value=message.value(),
            at=datetime.fromtimestamp(max(millis, 0) / 1000, UTC),
            max_bytes=900_000,
        )
        return (key if letter.original_key_b64 is not None else None), letter

    def stop(self) -> None:
        """Stop applying and leave the group."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._consumer.close()
