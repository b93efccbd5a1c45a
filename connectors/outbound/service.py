"""`escalator connect replies`: the consumer that delivers replies and notifications.

It follows `cases.events` in its own consumer group, one record at a time. An agent reply
(`message.appended`, outbound, key `agent:<action_id>`) goes out on the case's channel;
an escalation step with `notify` goes to its targets; a page, an acknowledgement of pages or
their resolution goes to the on-call providers (`pagers`). Each delivery is tried with
exponential backoff; one that keeps failing (or fails permanently, e.g. a 4xx) becomes a
`reply.failed` / `notification.failed` event on `cases.events` and a metric — never a
silent drop.

Each delivery goes out once. Its outcome is written to the delivery ledger
(`replies.deliveries`) and acknowledged before the record's offset is committed, and the
ledger is consulted before every send, so neither a failed commit, a restart, a rebalance
nor the same event written twice sends it again (see `ledger`). Most events ask for
nothing; their offsets are committed in the background (every `COMMIT_EVERY` records or
`COMMIT_INTERVAL_SECONDS`), so the service keeps up with the whole log: a synchronous
commit per event held it to a few hundred events a second. A record the service
cannot process (not a case event, an unreadable payload, a sender that raises) is written
to `messages.dlq` with its reason and bytes, and the service goes on: it never stops for
a record's content.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from connectors.outbound import _metrics as metrics
from connectors.outbound._acked import AckedWriter, RecordRejected, RetryPolicy, Stopped
from connectors.outbound._dead_letters import dead_letter
from connectors.outbound._model import (
    UnreadableEventError,
    acknowledgement_in,
    notification_in,
    reply_in,
)
from connectors.outbound._pages import page_orders_in
from connectors.outbound.deliveries import Deliveries
from connectors.outbound.ledger import (
    DeliveryLedger,
    LedgerBounds,
    LedgerUnavailable,
)
from connectors.outbound.notify import Notifier
from connectors.outbound.pagers import Pagers
from connectors.outbound.senders import ReplySender
from kafkaio import clients
from kafkaio.blocking import BlockingProducer
from schemas import CaseEvent, Topics

__all__ = ["DeliveryService", "RetryPolicy", "Stopped"]

log = logging.getLogger(__name__)

COMMIT_EVERY = 1_000
"""Events that asked for nothing, committed together (in the background) at the latest."""

COMMIT_INTERVAL_SECONDS = 1.0
"""How long such an event's offset waits for its commit at the most."""


class DeliveryService(Deliveries):
    """Consumes `cases.events` and delivers what they ask for; see the module docstring."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        topics: Topics,
        senders: ReplySender,
        notifier: Notifier,
        retry: RetryPolicy | None = None,
        group_id: str | None = None,
        from_beginning: bool = False,
        ledger_bounds: LedgerBounds | None = None,
        pagers: Pagers | None = None,
        acknowledgement_window_seconds: float = 3_600.0,
    ) -> None:
        self.topics = topics
        self.acknowledgement_window_seconds = acknowledgement_window_seconds
        """At most one acknowledgement per recipient (channel and address) within this long."""
        self.senders = senders
        self.notifier = notifier
        self.pagers = pagers
        self.retry = retry or RetryPolicy()
        self.stop_event = threading.Event()
        self._consumer = clients.consumer(
            # a killed replica's partitions move on after 10 s, not librdkafka's 45 s
            {"session.timeout.ms": 10_000, **connection},
            group_id or f"{topics.prefix}replies",
            {"auto.offset.reset": "earliest" if from_beginning else "latest"},
        )
        self._producer = BlockingProducer(connection)
        self._writer = AckedWriter(self._producer, self.retry, self.stop_event)
        self.ledger = DeliveryLedger(
            connection, topics.reply_deliveries, self._writer, ledger_bounds
        )
        metrics.LEDGER_ENTRIES.set_function(self.ledger.__len__)
        self._assigned: frozenset[int] = frozenset()
        self._uncommitted: dict[tuple[str, int], int] = {}
        """Next offsets of events that asked for nothing, not committed yet."""
        self._waiting = 0
        """How many such events wait for that commit."""
        self._last_commit = time.monotonic()
        self._ledger_behind = True

    def run(self) -> None:
        """Deliver until `stop()`; commits each record's offset once it is fully handled."""
        self._consumer.subscribe(
            [self.topics.case_events], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        try:
            while not self.stop_event.is_set():
                message = self._consumer.poll(0.5)
                if message is None:
                    self._commit_uncommitted(asynchronous=True)  # idle: nothing waits longer
                    continue
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("replies: consumer error: %s", error)
                    continue
                if not self._ledger_ready(message):
                    continue
                try:
                    acted = self.handle(message)
                except Stopped:
                    return
                if acted:
                    self._commit(message)
                else:
                    self._commit_later(message)
        finally:
            self._commit_uncommitted(asynchronous=False)
            self._consumer.close()
            self._producer.close(10)
            self.ledger.close()

    def holds_partitions(self) -> bool:
        """Whether the consumer has partitions of `cases.events` assigned (for `/readyz`)."""
        return bool(self._assigned)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = self._assigned | {tp.partition for tp in partitions}
        # the previous owner of these partitions may have delivered since we last looked
        self._ledger_behind = True

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._commit_uncommitted(asynchronous=False)  # while the partitions are still ours
        self._assigned = self._assigned - {tp.partition for tp in partitions}

    def stop(self) -> None:
        """Ask `run` to return (a record in progress stays uncommitted, so it is redone)."""
        self.stop_event.set()

    def _ledger_ready(self, message: Message[Any, Any]) -> bool:
        """Read the ledger to its end after an assignment, before anything is delivered.

        When it cannot be read, the record is put back (seek) and tried again after a pause.
        """
        if not self._ledger_behind:
            return True
        try:
            read = self.ledger.catch_up()
        except LedgerUnavailable as exc:
            log.warning("replies: delivery ledger not readable (%s); waiting", exc)
            self._consumer.seek(
                TopicPartition(
                    message.topic() or "", message.partition() or 0, message.offset() or 0
                )
            )
            self.stop_event.wait(self.retry.first_backoff_seconds)
            return False
        self._ledger_behind = False
        log.info("replies: delivery ledger read (%d records, %d keys)", read, len(self.ledger))
        return True

    def _commit_later(self, message: Message[Any, Any]) -> None:
        """An event that asked for nothing: its offset goes with the next background commit."""
        where = (message.topic() or "", message.partition() or 0)
        self._uncommitted[where] = (message.offset() or 0) + 1
        self._waiting += 1
        if (
            self._waiting >= COMMIT_EVERY
            or time.monotonic() - self._last_commit >= COMMIT_INTERVAL_SECONDS
        ):
            self._commit_uncommitted(asynchronous=True)

    def _commit_uncommitted(self, asynchronous: bool) -> None:
        """Commit the offsets noted by `_commit_later` (redoing them after a crash is harmless)."""
        self._last_commit = time.monotonic()
        self._waiting = 0
        if not self._uncommitted:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._uncommitted.items()]
        self._uncommitted.clear()
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            metrics.COMMIT_FAILURES.inc()
            log.warning("replies: commit of %d partitions' offsets failed: %s", len(offsets), exc)

    def _commit(self, message: Message[Any, Any]) -> None:
        """Commit the record's offset; a failure is harmless, the ledger holds its outcome."""
        # an older offset of this partition still waiting must not land after this one
        self._uncommitted.pop((message.topic() or "", message.partition() or 0), None)
        try:
            self._consumer.commit(message=message, asynchronous=False)
        except KafkaException as exc:
            metrics.COMMIT_FAILURES.inc()
            log.warning(
                "replies: commit of %s/%s@%s failed (%s); its outcome is in the ledger, so "
                "a redelivery sends nothing again",
                message.topic(),
                message.partition(),
                message.offset(),
                exc,
            )

    def handle(self, message: Message[Any, Any]) -> bool:
        """Handle one `cases.events` record; whatever it holds, it ends handled or dead-lettered.

        Returns whether it asked for something (a delivery, or a dead letter).
        """
        source = f"{message.topic()}/{message.partition()}/{message.offset()}"
        try:
            return self.process(message.value(), source)
        except Stopped:
            raise
        except UnreadableEventError as exc:
            self._dead_letter(message, exc.reason, str(exc))
        except RecordRejected as exc:
            self._dead_letter(message, "unwritable_outcome", str(exc))
        except Exception as exc:  # a bug this record's content triggers must not stop us
            log.exception("replies: record %s could not be processed", source)
            self._dead_letter(message, "processing_error", f"{type(exc).__name__}: {exc}")
        return True

    def process(self, raw: bytes | None, source: str = "") -> bool:
        """Handle one `cases.events` value: deliver its reply or notifications, if any.

        Returns whether it asked for a delivery. Raises UnreadableEventError for a record
        that is not a readable case event.
        """
        if raw is None:
            return False
        try:
            event = CaseEvent.model_validate_json(raw)
        except ValidationError as exc:
            raise UnreadableEventError(f"not a case event: {exc}", "invalid_case_event") from exc
        reply = reply_in(event)
        if reply is not None:
            self._deliver_reply(event, reply, source)
            return True
        acknowledgement = acknowledgement_in(event)
        if acknowledgement is not None:
            self._deliver_acknowledgement(event, acknowledgement, source)
            return True
        acted = False
        notification = notification_in(event)
        if notification is not None:
            for delivery in self.notifier.deliveries(notification):
                self._deliver_notification(event, delivery, source)
                acted = True
        for order in page_orders_in(event):
            self._deliver_page(event, order, source)
            acted = True
        return acted

    def _dead_letter(self, message: Message[Any, Any], reason: str, detail: str) -> None:
        """Write the record to `messages.dlq` with its reason and bytes, and wait for the ack."""
        key, value, headers = dead_letter(message, reason, detail)
        where = f"{message.topic()}/{message.partition()}@{message.offset()}"
        log.warning("replies: %s dead-lettered (%s): %s", where, reason, detail[:300])
        self._writer.write(self.topics.dlq, key, value, headers=headers)
        metrics.DEAD_LETTERS.labels(reason).inc()
