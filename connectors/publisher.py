"""The connectors' publisher: kafkaio's one async producer, under the names connectors use.

The ingress answers 202 only after `publish` returns, i.e. after every record of the
request was acknowledged by all in-sync replicas (`acks=all`, idempotent producer).
"""

from __future__ import annotations

from kafkaio import PRODUCER_DEFAULTS, AsyncProducer, PublishError, Record, RecordLike

__all__ = ["PRODUCER_DEFAULTS", "KafkaPublisher", "OutboundRecord", "PublishError", "RecordLike"]

KafkaPublisher = AsyncProducer
"""The async producer connectors publish with (kafkaio's one async producer)."""

OutboundRecord = Record
"""The record type connectors publish (kafkaio's one record type)."""
