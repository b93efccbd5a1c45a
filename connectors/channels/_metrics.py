"""Prometheus metrics of the channel connectors (webhooks, SMTP, IMAP)."""

from __future__ import annotations

from prometheus_client import Counter

CHANNEL_REQUESTS = Counter(
    "escalator_channel_requests",
    "Requests (webhook calls, mails) reaching a channel connector, by outcome.",
    ["channel", "outcome"],
)
"""Outcomes: accepted, ignored, unauthorized, malformed, too_large, kafka_unavailable,
auto_reply (published tagged), recipient_refused, replayed (a delivery seen before, dropped)."""

AUTO_REPLIES = Counter(
    "escalator_email_auto_replies",
    "Auto-replies, bounces and bulk mail published tagged `auto_reply` (they never open a case).",
    ["source"],
)

CONNECTOR_ERRORS = Counter(
    "escalator_connector_errors",
    "Errors of inbound connectors other than refusals of bad input (a failed mailbox poll, "
    "a mail that crashed the converter, Kafka not acknowledging), by connector and reason.",
    ["connector", "reason"],
)
"""Reasons: poll_failed (IMAP), conversion_failed (SMTP), kafka_unavailable (SMTP, IMAP)."""
