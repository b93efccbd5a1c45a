"""How the reply service delivers each kind of case event: replies, acknowledgements,
notifications and pages, each tried with backoff, recorded in the ledger, and reported as a
failure event when it cannot go out (see `connectors.outbound.service`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from connectors.outbound import _metrics as metrics
from connectors.outbound._acked import AckedWriter, RetryPolicy, Stopped
from connectors.outbound._model import (
    DeliveryError,
    Reply,
)
from connectors.outbound._pages import PageOrder
from connectors.outbound.ledger import (
    FINAL,
    DeliveryLedger,
    Outcome,
)
from connectors.outbound.notify import Delivery, Notifier
from connectors.outbound.pagers import IDEMPOTENT_VIA, Pagers
from connectors.outbound.senders import ReplySender
from schemas import CaseEvent, CaseEventType, Topics, channel_label
from schemas.ids import event_id_for

log = logging.getLogger(__name__)

IN_DOUBT = (
    "the reply service stopped while this reply was being handed to the provider: it may or "
    "may not have arrived. Check before sending it again."
)


class Deliveries:
    """The delivery steps of `DeliveryService`, one per kind of event it acts on."""

    topics: Topics
    senders: ReplySender
    notifier: Notifier
    pagers: Pagers | None
    retry: RetryPolicy
    stop_event: threading.Event
    ledger: DeliveryLedger
    acknowledgement_window_seconds: float
    _writer: AckedWriter

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
