"""The `/metrics` answer in the format the scraper asks for (OpenMetrics or Prometheus text).

Prometheus sends `Accept: application/openmetrics-text; ...` when it wants exemplars; every
other client gets the classic text format that `promtool check metrics` reads.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder


def render_metrics(accept: str | None, registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The registry's exposition and its Content-Type, negotiated from an `Accept` header."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
