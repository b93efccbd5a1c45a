"""Prometheus metrics of `escalator connect replies` (reply delivery and notifications)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REPLIES_SENT = Counter(
    "escalator_replies_sent",
    "Agent replies delivered on the case's channel, by channel.",
    ["channel"],
)
REPLY_FAILURES = Counter(
    "escalator_reply_failures",
    "Agent replies given up after every retry (each is a reply.failed case event), by channel "
    "and reason.",
    ["channel", "reason"],
)
DELIVERY_ATTEMPTS_FAILED = Counter(
    "escalator_delivery_attempts_failed",
    "Single failed delivery attempts (retried with backoff unless permanent), by kind "
    "(reply, notification) and reason.",
    ["kind", "reason"],
)
NOTIFICATIONS_SENT = Counter(
    "escalator_notifications_sent",
    "Escalation notifications delivered, by medium (slack, email).",
    ["medium"],
)
NOTIFICATION_FAILURES = Counter(
    "escalator_notification_failures",
    "Escalation notifications given up after every retry (each is a notification.failed case "
    "event), by medium and reason.",
    ["medium", "reason"],
)
PAGES_SENT = Counter(
    "escalator_pages_sent",
    "On-call page orders delivered, by provider (pagerduty, opsgenie, sms, slack, email) and "
    "action (trigger, acknowledge, resolve).",
    ["via", "action"],
)
PAGE_FAILURES = Counter(
    "escalator_page_failures",
    "On-call page orders given up after every retry (each is a page.failed case event), by "
    "provider and reason.",
    ["via", "reason"],
)
DELIVERIES_SKIPPED = Counter(
    "escalator_deliveries_skipped",
    "Replies and notifications not sent because the ledger says they were already sent or "
    "given up (a repeated event, a redelivered record), by kind and outcome.",
    ["kind", "outcome"],
)
DEAD_LETTERS = Counter(
    "escalator_reply_dead_letters",
    "cases.events records the reply service could not process, written to messages.dlq with "
    "their bytes, by reason.",
    ["reason"],
)
COMMIT_FAILURES = Counter(
    "escalator_reply_commit_failures",
    "Offset commits of the reply service that failed (harmless: the delivery ledger stops a "
    "second send of the redelivered records).",
)
LEDGER_ENTRIES = Gauge(
    "escalator_reply_ledger_entries",
    "Delivery keys the reply service remembers (bounded by ESCALATOR_REPLY_DEDUP_ENTRIES).",
)
ACKNOWLEDGEMENTS_SUPPRESSED = Counter(
    "escalator_acknowledgements_suppressed",
    "Acknowledgements not sent because one went to the same recipient within the window "
    "(each is an acknowledgement.suppressed case event), by channel.",
    ["channel"],
)
