"""The desk's Prometheus metrics, served on the desk's `/metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ACTIONS = Counter(
    "escalator_desk_actions",
    "Writes through the desk API by action type and the stream's verdict.",
    ["type", "outcome"],
)
ACTION_SECONDS = Histogram(
    "escalator_desk_action_seconds",
    "From publishing an agent action to its verdict in the case store.",
    ["type"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ASSIGNER_DECISIONS = Counter(
    "escalator_assigner_decisions",
    "Decisions the assigner published: assign, release_offline, release_unaccepted, "
    "presence_expired.",
    ["decision"],
)
ASSIGNER_LEADER = Gauge(
    "escalator_assigner_leader",
    "1 while this desk process runs the assigner (exactly one process should).",
)
