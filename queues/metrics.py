"""Prometheus metrics of the case store projection, in a registry the caller chooses."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from queues.slo import SampleKind, SloSample

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
FIRST_RESPONSE_BUCKETS = (10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)
"""10 s … 7 d: the first-response targets of real policies fall between 15 min and 2 days."""
RESOLUTION_BUCKETS = (
    60,
    300,
    1800,
    3600,
    14400,
    28800,
    86400,
    172800,
    432000,
    604800,
    1209600,
    2592000,
)
"""1 min … 30 d."""


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
        for reason in ErrorReason:  # every reason shows from the start, at 0
            self.errors.labels(reason.value)
        self.dead_letters = Counter(
            "escalator_projection_dead_letters",
            "Case event records written to messages.dlq because the store could not take them "
            "as they are, by reason (malformed, invalid_payload, failed).",
            ["reason"],
            registry=target,
        )
        self.stalled = Gauge(
            "escalator_projection_stalled_seconds",
            "How long the batch in progress has been retried without finishing (0: between "
            "batches).",
            registry=target,
        )
        self.batch_seconds = Histogram(
            "escalator_projection_batch_seconds",
            "Time to apply one batch of records in one database transaction.",
            buckets=BATCH_BUCKETS,
            registry=target,
        )
        self.first_response = Histogram(
            "escalator_first_response_seconds",
            "Wall time from a case's first customer message to the agent reply that met its "
            "first-response clock, by queue and priority.",
            ["queue", "priority"],
            buckets=FIRST_RESPONSE_BUCKETS,
            registry=target,
        )
        self.resolution = Histogram(
            "escalator_resolution_seconds",
            "Wall time from a case's opening to its resolution, by queue and priority.",
            ["queue", "priority"],
            buckets=RESOLUTION_BUCKETS,
            registry=target,
        )
        self.clocks_met = Counter(
            "escalator_sla_clocks_met",
            "SLA clocks stopped by the event that satisfies them, by policy, clock, queue "
            "and outcome (in_time, late).",
            ["policy", "clock", "queue", "outcome"],
            registry=target,
        )

    def observe(self, sample: SloSample) -> None:
        """Count one SLO sample; latency samples carry the case id as their exemplar."""
        exemplar = {"case_id": sample.case_id}
        if sample.kind is SampleKind.CLOCK_MET:
            outcome = "in_time" if sample.in_time else "late"
            self.clocks_met.labels(sample.policy, sample.clock, sample.queue, outcome).inc()
        elif sample.kind is SampleKind.FIRST_RESPONSE and sample.seconds is not None:
            self.first_response.labels(sample.queue, sample.priority).observe(
                sample.seconds, exemplar
            )
        elif sample.kind is SampleKind.RESOLUTION and sample.seconds is not None:
            self.resolution.labels(sample.queue, sample.priority).observe(sample.seconds, exemplar)


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
