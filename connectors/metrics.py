"""Prometheus metrics of the connectors (module-level, in the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from schemas import channel_label

ACCEPTED = Counter(
    "escalator_ingress_messages_accepted",
    "Messages accepted by the ingress and acknowledged by Kafka.",
    ["channel"],
)
REJECTED = Counter(
    "escalator_ingress_messages_rejected",
    "Messages or requests refused by the ingress, by reason.",
    ["reason"],
)
PUBLISH_SECONDS = Histogram(
    "escalator_ingress_publish_seconds",
    "Time from a request's arrival to Kafka's acknowledgement of all its messages.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

__all__ = ["ACCEPTED", "PUBLISH_SECONDS", "REJECTED", "channel_label"]
