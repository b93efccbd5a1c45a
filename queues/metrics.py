"""Prometheus metrics of the case store projection, in a registry the caller chooses."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ProjectionMetrics:
    """The projection's counters and histogram.

    Pass a fresh `CollectorRegistry` per instance in tests; the projection process uses
    the default registry, which `prometheus_client.start_http_server` serves.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        target = REGISTRY if registry is None else registry
        self.registry = target
        self.events = Counter(
            "escalator_projection_events",
            "Case events newly recorded in the case store, by event type.",
            ["type"],
            registry=target,
        )
        self.duplicates = Counter(
            "escalator_projection_duplicate_events",
            "Case events skipped because their event id was already recorded (redelivery).",
            registry=target,
        )
        self.errors = Counter(
            "escalator_projection_errors",
            "Records or batches the projection could not handle, by reason.",
            ["reason"],
            registry=target,
        )
        self.batch_seconds = Histogram(
            "escalator_projection_batch_seconds",
            "Time to apply one batch of records in one database transaction.",
            buckets=BATCH_BUCKETS,
            registry=target,
        )


class ErrorReason(StrEnum):
    """Values of the `reason` label of `escalator_projection_errors_total`."""

    MALFORMED = "malformed"
    """The record is not a case event envelope (bad JSON, missing fields, no value)."""
    INVALID_PAYLOAD = "invalid_payload"
    """A known event type whose payload does not validate: recorded for audit, not applied."""
    APPLY_FAILED = "apply_failed"
    """Applying one event failed on its own (e.g. a value the database refuses); skipped."""
    DATABASE = "database"
    """A batch hit a transient database error and is retried."""
    OFFSET_COMMIT = "offset_commit"
    """Kafka refused the offset commit after the database commit; redelivery is harmless."""
    KAFKA = "kafka"
    """The consumer reported an error."""
