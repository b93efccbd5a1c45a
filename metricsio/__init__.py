"""The one `/metrics` exposition every process serves (ingress, worker, projection, desk, replies).

A floor of its own, beside `kafkaio` and below everything else: the connectors, the worker
(streams), the case store processes (queues) and the CLI's own servers all answer
`/metrics` and may not import each other, so the encoder lives below all of them. It
imports nothing of ours. Each web framework wraps the bytes in its own response. The
worker and the projection also share `metricsio.gc_tuning`: their garbage collector's
tuning and the histogram of its pauses.

Prometheus sends `Accept: application/openmetrics-text; ...` when it wants exemplars; every
other client gets the classic text format that `promtool check metrics` reads.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["MULTIPROCESS_DIR_VARIABLE", "render_metrics", "served_registry"]

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess mode: set (to an empty folder) before the processes start."""


def render_metrics(accept: str | None, registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The registry's exposition and its Content-Type, negotiated from an `Accept` header."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def served_registry() -> CollectorRegistry:
    """What `/metrics` exposes: this process's registry, or, when several processes serve one
    port (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`), every
    process's metrics summed from their files, whichever process answers."""
    if not os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
