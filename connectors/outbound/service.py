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
nor the same event written twice sends it again (see `ledger`). A record the service
cannot process (not a case event, an unreadable payload, a sender that raises) is written
to `messages.dlq` with its reason and bytes, and the service goes on: it never stops for
a record's content.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from connectors.outbound import _metrics as metrics
from connectors.outbound._acked import AckedWriter, RecordRejected, RetryPolicy, Stopped
from connectors.outbound._dead_letters import dead_letter
from connectors.outbound._model import (
    DeliveryError,
    Reply,
    UnreadableEventError,
    acknowledgement_in,
    notification_in,
    reply_in,
)
from connectors.outbound._pages import PageOrder, page_orders_in
from connectors.outbound.ledger import (
    FINAL,
    DeliveryLedger,
    LedgerBounds,
    LedgerUnavailable,
    Outcome,
)
from connectors.outbound.notify import Delivery, Notifier
from connectors.outbound.pagers import IDEMPOTENT_VIA, Pagers
from connectors.outbound.senders import ReplySender
from kafkaio import clients
from kafkaio.blocking import BlockingProducer
from schemas import CaseEvent, CaseEventType, Topics, channel_label
from schemas.ids import event_id_for

__all__ = ["DeliveryService", "RetryPolicy", "Stopped"]

log = logging.getLogger(__name__)

IN_DOUBT = (
    "the reply service stopped while this reply was being handed to the provider: it may or "
    "may not have arrived. Check before sending it again."
)


class DeliveryService:
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
                    continue
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("replies: consumer error: %s", error)
                    continue
                if not self._ledger_ready(message):
                    continue
                try:
                    self.handle(message)
                except Stopped:
                    return
                self._commit(message)
        finally:
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

    def _commit(self, message: Message[Any, Any]) -> None:
        """Commit the record's offset; a failure is harmless, the ledger holds its outcome."""
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

    def handle(self, message: Message[Any, Any]) -> None:
        """Handle one `cases.events` record; whatever it holds, it ends handled or dead-lettered."""
        source = f"{message.topic()}/{message.partition()}/{message.offset()}"
        try:
            self.process(message.value(), source)
        except Stopped:
            raise
        except UnreadableEventError as exc:
            self._dead_letter(message, exc.reason, str(exc))
        except RecordRejected as exc:
            self._dead_letter(message, "unwritable_outcome", str(exc))
        except Exception as exc:  # a bug this record's content triggers must not stop us
            log.exception("replies: record %s could not be processed", source)
            self._dead_letter(message, "processing_error", f"{type(exc).__name__}: {exc}")

    def process(self, raw: bytes | None, source: str = "") -> None:
        """Handle one `cases.events` value: deliver its reply or notifications, if any.

        Raises UnreadableEventError for a record that is not a readable case event.
        """
        if raw is None:
            return
        try:
            event = CaseEvent.model_validate_json(raw)
        except ValidationError as exc:
            raise UnreadableEventError(f"not a case event: {exc}", "invalid_case_event") from exc
        reply = reply_in(event)
        if reply is not None:
            self._deliver_reply(event, reply, source)
            return
        acknowledgement = acknowledgement_in(event)
        if acknowledgement is not None:
            self._deliver_acknowledgement(event, acknowledgement, source)
            return
        notification = notification_in(event)
        if notification is not None:
            for delivery in self.notifier.deliveries(notification):
                self._deliver_notification(event, delivery, source)
        for order in page_orders_in(event):
            self._deliver_page(event, order, source)

    def _deliver_reply(self, event: CaseEvent, reply: Reply, source: str) -> None:
        # A reply whose outcome is unknown (`sending` found after a crash, a timeout after
        # the request went out) is never handed to a provider again: it is reported.
        key = f"reply:{event.event_id}"
        seen = self.ledger.outcome(key)
        if seen in FINAL:
            self._skip("reply", key, seen)
            return
        failure: tuple[int, DeliveryError] | None
        if seen is Outcome.SENDING:
            failure = 0, DeliveryError("in_doubt", IN_DOUBT, permanent=True)
        else:
            self.ledger.record(key, Outcome.SENDING, event.case_id, source)
            try:
                failure = self._attempt(
                    "reply", lambda: self.senders.send(reply), retry_in_doubt=False
                )
            except Stopped:  # between two tries: no attempt is in flight, nothing went out
                self.ledger.record(key, Outcome.UNSENT, event.case_id, source)
                raise
        if failure is None:
            self.ledger.record(key, Outcome.SENT, event.case_id, source)
            metrics.REPLIES_SENT.labels(channel_label(reply.channel)).inc()
            return
        attempts, error = failure
        outcome = "in doubt" if error.reason == "in_doubt" else "not delivered"
        self._fail(
            key,
            source,
            event.case_id,
            CaseEventType.REPLY_FAILED.value,
            reply.key,
            f"reply {reply.key} on {reply.channel} to {reply.recipient} {outcome} "
            f"after {attempts} attempt(s): {error}",
            {
                "message_key": reply.key,
                "channel": reply.channel,
                "recipient": reply.recipient,
                "reason": error.reason,
                "detail": error.detail,
                "attempts": attempts,
                "source": source,
            },
        )
        metrics.REPLY_FAILURES.labels(channel_label(reply.channel), error.reason).inc()

    def _deliver_acknowledgement(self, event: CaseEvent, reply: Reply, source: str) -> None:
        """An acknowledgement goes out as a reply does, unless one went to the same customer
        or recipient within the window (RFC 3834): `acknowledgement.suppressed` says so then.

        An update (the promise moved earlier) is not held back by the window.
        """
        key = f"reply:{event.event_id}"
        windows = [
            f"acknowledged-customer:{reply.customer_id or ''}",
            f"acknowledged-to:{reply.channel}:{(reply.recipient or '').strip().lower()}",
        ]
        if self.ledger.outcome(key) is None and not reply.update and self._within_window(windows):
            metrics.ACKNOWLEDGEMENTS_SUPPRESSED.labels(channel_label(reply.channel)).inc()
            self._fail(
                key,
                source,
                event.case_id,
                CaseEventType.ACKNOWLEDGEMENT_SUPPRESSED.value,
                reply.key,
                f"acknowledgement {reply.key} not sent to {reply.recipient} on {reply.channel}: "
                f"one went to this customer less than {self.acknowledgement_window_seconds:.0f}s "
                "ago (RFC 3834)",
                {
                    "message_key": reply.key,
                    "channel": reply.channel,
                    "recipient": reply.recipient,
                    "reason": "window",
                    "window_seconds": self.acknowledgement_window_seconds,
                    "source": source,
                },
            )
            return
        self._deliver_reply(event, reply, source)
        if self.ledger.outcome(key) is Outcome.SENT and not reply.update:
            for window in windows:
                self.ledger.record(window, Outcome.SENT, event.case_id, source)

    def _within_window(self, windows: list[str]) -> bool:
        """Whether an acknowledgement went out under any of these keys within the window."""
        now = time.time()
        for window in windows:
            last = self.ledger.recorded_at(window)
            if last is not None and now - last < self.acknowledgement_window_seconds:
                return True
        return False

    def _deliver_notification(self, event: CaseEvent, delivery: Delivery, source: str) -> None:
        # People inside the company: a notification whose outcome is unknown after a crash is
        # sent again (a second ping costs less than a missed escalation).
        key = f"notification:{delivery.key}"
        seen = self.ledger.outcome(key)
        if seen in FINAL:
            self._skip("notification", key, seen)
            return
        failure = self._attempt(
            "notification", partial(self.notifier.send, delivery), retry_in_doubt=True
        )
        if failure is None:
            self.ledger.record(key, Outcome.SENT, event.case_id, source)
            metrics.NOTIFICATIONS_SENT.labels(delivery.medium).inc()
            return
        attempts, error = failure
        self._fail(
            key,
            source,
            event.case_id,
            CaseEventType.NOTIFICATION_FAILED.value,
            delivery.key,
            f"notification of {delivery.target} by {delivery.medium} not delivered after "
            f"{attempts} attempt(s): {error}",
            {
                "escalation_event_id": event.event_id,
                "target": delivery.target,
                "medium": delivery.medium,
                "reason": error.reason,
                "detail": error.detail,
                "attempts": attempts,
                "source": source,
            },
        )
        metrics.NOTIFICATION_FAILURES.labels(delivery.medium, error.reason).inc()

    def _deliver_page(self, event: CaseEvent, order: PageOrder, source: str) -> None:
        # PagerDuty and Opsgenie drop a repeated order (dedup key, alias): resent when in
        # doubt. A text, a Slack post or a mail is not resent after a crash mid-send: it is
        # reported in doubt, like a reply, so nobody is paged twice by one order.
        key = order.ledger_key
        seen = self.ledger.outcome(key)
        if seen in FINAL:
            self._skip("page", key, seen)
            return
        idempotent = order.via in IDEMPOTENT_VIA
        failure: tuple[int, DeliveryError] | None
        if seen is Outcome.SENDING and not idempotent:
            failure = 0, DeliveryError("in_doubt", IN_DOUBT, permanent=True)
        else:
            if not idempotent:
                self.ledger.record(key, Outcome.SENDING, event.case_id, source)
            try:
                failure = self._attempt(
                    "page", partial(self._send_page, order), retry_in_doubt=idempotent
                )
            except Stopped:
                if not idempotent:
                    self.ledger.record(key, Outcome.UNSENT, event.case_id, source)
                raise
        if failure is None:
            self.ledger.record(key, Outcome.SENT, event.case_id, source)
            metrics.PAGES_SENT.labels(order.via, order.action).inc()
            return
        attempts, error = failure
        self._fail(
            key,
            source,
            event.case_id,
            CaseEventType.PAGE_FAILED.value,
            key,
            f"{order.action} of page {order.key} to {order.target} by {order.via} not "
            f"delivered after {attempts} attempt(s): {error}",
            {
                "escalation_event_id": event.event_id,
                "key": order.key,
                "action": order.action,
                "target": order.target,
                "via": order.via,
                "reason": error.reason,
                "detail": error.detail,
                "attempts": attempts,
                "source": source,
            },
        )
        metrics.PAGE_FAILURES.labels(order.via, error.reason).inc()

    def _send_page(self, order: PageOrder) -> None:
        if self.pagers is None:
            raise DeliveryError("not_configured", "this reply service has no pagers", True)
        self.pagers.send(order)

    def _attempt(
        self, kind: str, send: Callable[[], None], retry_in_doubt: bool
    ) -> tuple[int, DeliveryError] | None:
        """Try `send` with backoff; None on success, else (attempts made, last error).

        A failure after which the reply may have arrived ends the tries unless the far end
        drops repeats (`retry_in_doubt`); a sender that raises anything else is a permanent
        `sender_error`.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                send()
            except DeliveryError as error:
                metrics.DELIVERY_ATTEMPTS_FAILED.labels(kind, error.reason).inc()
                if error.in_doubt and not retry_in_doubt:
                    log.error("replies: %s in doubt after attempt %d: %s", kind, attempt, error)
                    return attempt, DeliveryError("in_doubt", f"{error}", permanent=True)
                if error.permanent or attempt >= self.retry.attempts:
                    log.error("replies: %s given up after %d attempt(s): %s", kind, attempt, error)
                    return attempt, error
                wait = self.retry.wait_after(attempt, error.retry_after)
                log.warning(
                    "replies: %s attempt %d failed (%s); retry in %.1fs", kind, attempt, error, wait
                )
                if self.stop_event.wait(wait):
                    raise Stopped from error
            except Exception as exc:  # a sender's bug: never retried, never fatal
                log.exception("replies: %s sender raised", kind)
                metrics.DELIVERY_ATTEMPTS_FAILED.labels(kind, "sender_error").inc()
                return attempt, DeliveryError(
                    "sender_error", f"{type(exc).__name__}: {exc}", permanent=True
                )
            else:
                return None

    def _skip(self, kind: str, key: str, seen: Outcome | None) -> None:
        """A delivery already made or given up: not again (its failure event is re-written)."""
        metrics.DELIVERIES_SKIPPED.labels(kind, str(seen)).inc()
        log.info("replies: %s %s already %s; not sent again", kind, key, seen)
        failure = self.ledger.failure_event(key)
        if failure is not None:  # a crash may have come between the ledger and the event
            self._write_case_event(failure)

    def _fail(
        self,
        ledger_key: str,
        source: str,
        case_id: str,
        kind: str,
        key: str,
        reason: str,
        payload: dict[str, Any],
    ) -> None:
        """Record a failure: in the ledger (with its event), then the event on cases.events.

        In this order a crash between the two leaves the ledger knowing the exact event,
        which the redelivered record writes again: one event id, one content.
        """
        event = CaseEvent(
            event_id=event_id_for(case_id, kind, key),
            case_id=case_id,
            type=kind,
            at=datetime.now(UTC),
            reason=reason[:2000],
            payload=payload,
        )
        document = event.model_dump_json()
        self.ledger.record(ledger_key, Outcome.FAILED, case_id, source, failure_event=document)
        self._write_case_event(document)

    def _write_case_event(self, document: str) -> None:
        """Write one of our case events and wait for Kafka's acknowledgement."""
        case_id = CaseEvent.model_validate_json(document).case_id
        self._writer.write(
            self.topics.case_events,
            case_id.encode("utf-8", "surrogatepass"),
            document.encode("utf-8"),
        )

    def _dead_letter(self, message: Message[Any, Any], reason: str, detail: str) -> None:
        """Write the record to `messages.dlq` with its reason and bytes, and wait for the ack."""
        key, value, headers = dead_letter(message, reason, detail)
        where = f"{message.topic()}/{message.partition()}@{message.offset()}"
        log.warning("replies: %s dead-lettered (%s): %s", where, reason, detail[:300])
        self._writer.write(self.topics.dlq, key, value, headers=headers)
        metrics.DEAD_LETTERS.labels(reason).inc()
