"""`escalator connect replies`: the consumer that delivers replies and notifications.

It follows `cases.events` in its own consumer group, one record at a time. An agent reply
(`message.appended`, outbound, key `agent:<action_id>`) goes out on the case's channel;
an escalation step with `notify` goes to its targets. Each delivery is tried with
exponential backoff; one that keeps failing (or fails permanently, e.g. a 4xx) becomes a
`reply.failed` / `notification.failed` event on `cases.events` and a metric — never a
silent drop. The record's offset is committed only after every delivery it asked for
succeeded or its failure event was acknowledged by Kafka, so a crash re-delivers
(at-least-once; the idempotency keys let the far end recognise the repeat).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from pydantic import ValidationError

from connectors.outbound import _metrics as metrics
from connectors.outbound._model import DeliveryError, notification_in, reply_in
from connectors.outbound.notify import Notifier
from connectors.outbound.senders import ChannelSenders
from kafkaio import PublishError, Record, clients
from kafkaio.blocking import BlockingProducer
from schemas import CaseEvent, CaseEventType, Topics, channel_label
from schemas.ids import event_id_for

log = logging.getLogger(__name__)


class Stopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The service is stopping in the middle of a record: leave its offset uncommitted."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a delivery is tried before it is given up."""

    attempts: int = 6
    first_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): 1, 2, 4, … capped."""
        return min(self.first_backoff_seconds * 2.0 ** (attempt - 1), self.max_backoff_seconds)


class DeliveryService:
    """Consumes `cases.events` and delivers what they ask for; see the module docstring."""

    def __init__(
        self,
        connection: Mapping[str, str | int | float | bool],
        topics: Topics,
        senders: ChannelSenders,
        notifier: Notifier,
        retry: RetryPolicy | None = None,
        group_id: str | None = None,
        from_beginning: bool = False,
    ) -> None:
        self.topics = topics
        self.senders = senders
        self.notifier = notifier
        self.retry = retry or RetryPolicy()
        self.stop_event = threading.Event()
        self._consumer = clients.consumer(
            connection,
            group_id or f"{topics.prefix}replies",
            {"auto.offset.reset": "earliest" if from_beginning else "latest"},
        )
        self._producer = BlockingProducer(connection)
        self._assigned: frozenset[int] = frozenset()

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
                try:
                    self.process(message.value())
                except Stopped:
                    return
                self._consumer.commit(message=message, asynchronous=False)
        finally:
            self._consumer.close()
            self._producer.close(10)

    def holds_partitions(self) -> bool:
        """Whether the consumer has partitions of `cases.events` assigned (for `/readyz`)."""
        return bool(self._assigned)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = self._assigned | {tp.partition for tp in partitions}

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = self._assigned - {tp.partition for tp in partitions}

    def stop(self) -> None:
        """Ask `run` to return (a record in progress stays uncommitted, so it is redone)."""
        self.stop_event.set()

    def process(self, raw: bytes | None) -> None:
        """Handle one `cases.events` record: deliver its reply or notifications, if any."""
        if raw is None:
            return
        try:
            event = CaseEvent.model_validate_json(raw)
        except ValidationError as exc:
            log.warning("replies: skipping a record that is not a case event: %s", exc)
            return
        reply = reply_in(event)
        if reply is not None:
            failure = self._attempt("reply", lambda: self.senders.send(reply))
            if failure is None:
                metrics.REPLIES_SENT.labels(channel_label(reply.channel)).inc()
                return
            attempts, error = failure
            self._record(
                event.case_id,
                CaseEventType.REPLY_FAILED.value,
                reply.key,
                f"reply {reply.key} on {reply.channel} to {reply.recipient} not delivered "
                f"after {attempts} attempt(s): {error}",
                {
                    "message_key": reply.key,
                    "channel": reply.channel,
                    "recipient": reply.recipient,
                    "reason": error.reason,
                    "detail": error.detail,
                    "attempts": attempts,
                },
            )
            metrics.REPLY_FAILURES.labels(channel_label(reply.channel), error.reason).inc()
            return
        notification = notification_in(event)
        if notification is None:
            return
        for delivery in self.notifier.deliveries(notification):
            failure = self._attempt("notification", partial(self.notifier.send, delivery))
            if failure is None:
                metrics.NOTIFICATIONS_SENT.labels(delivery.medium).inc()
                continue
            attempts, error = failure
            self._record(
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
                },
            )
            metrics.NOTIFICATION_FAILURES.labels(delivery.medium, error.reason).inc()

    def _attempt(self, kind: str, send: Callable[[], None]) -> tuple[int, DeliveryError] | None:
        """Try `send` with backoff; None on success, else (attempts made, last error)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                send()
            except DeliveryError as error:
                metrics.DELIVERY_ATTEMPTS_FAILED.labels(kind, error.reason).inc()
                if error.permanent or attempt >= self.retry.attempts:
                    log.error("replies: %s given up after %d attempt(s): %s", kind, attempt, error)
                    return attempt, error
                wait = self.retry.backoff(attempt)
                log.warning(
                    "replies: %s attempt %d failed (%s); retry in %.1fs", kind, attempt, error, wait
                )
                if self.stop_event.wait(wait):
                    raise Stopped from error
            else:
                return None

    def _record(
        self, case_id: str, kind: str, key: str, reason: str, payload: dict[str, Any]
    ) -> None:
        """Publish a failure event and wait for Kafka's acknowledgement (retrying until then)."""
        event = CaseEvent(
            event_id=event_id_for(case_id, kind, key),
            case_id=case_id,
            type=kind,
            at=datetime.now(UTC),
            reason=reason,
            payload=payload,
        )
        value = event.model_dump_json().encode("utf-8")
        attempt = 0
        record = Record(self.topics.case_events, case_id.encode("utf-8"), value)
        while True:
            attempt += 1
            try:
                self._producer.send([record], timeout_seconds=30)
            except PublishError as error:
                failure = str(error)
            else:
                return
            wait = self.retry.backoff(attempt)
            log.warning(
                "replies: %s event not acknowledged (%s); retry in %.1fs", kind, failure, wait
            )
            if self.stop_event.wait(wait):
                raise Stopped
