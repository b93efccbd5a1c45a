"""Prometheus metrics of the stream worker (module-level, in the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_INGESTED = Counter(
    "escalator_messages_ingested",
    "Valid customer messages taken into the pipeline, by channel.",
    ["channel"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "escalator_messages_dead_lettered",
    "Inbound records refused and written to the dead-letter topic, by reason.",
    ["reason"],
)
MESSAGES_DUPLICATE = Counter(
    "escalator_messages_duplicate",
    "Messages dropped because the same channel and external id were already processed.",
    ["channel"],
)
CASES_OPENED = Counter("escalator_cases_opened", "Cases opened.", ["channel"])
CASES_ROUTED = Counter(
    "escalator_cases_routed",
    "Routing decisions that put a case on a queue (new case or re-route), by queue.",
    ["queue"],
)
INGEST_TO_ROUTED = Histogram(
    "escalator_ingest_to_routed_seconds",
    "Time from a message's Kafka timestamp on the inbound topic to its case being published.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RULES_INFO = Gauge(
    "escalator_rules_info", "The rule set in use (value 1), by version hash.", ["version"]
)
SHADOW_INFO = Gauge(
    "escalator_rules_shadow_info",
    "The shadow rule set evaluated beside the active one (value 1), by version hash.",
    ["version"],
)
SHADOW_EVALUATIONS = Counter(
    "escalator_rules_shadow_evaluations_total",
    "Customer messages the shadow rule set decided on beside the active set (stage C).",
)
SHADOW_DISAGREEMENTS = Counter(
    "escalator_rules_shadow_disagreements_total",
    "Decisions of the shadow rule set that differ from the active set's, by field "
    "(queue, priority, tags, sla_policy, escalation_policy, sla.<clock>; error: it failed).",
    ["field"],
)
BATCH_SIZE = Histogram(
    "escalator_worker_batch_size",
    "Records per processed batch, by stage.",
    ["stage"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000),
)
SLA_WARNINGS = Counter(
    "escalator_sla_warnings",
    "SLA clocks that passed their warning point, by policy, clock and queue.",
    ["policy", "clock", "queue"],
)
SLA_BREACHES = Counter(
    "escalator_sla_breaches",
    "SLA clocks that passed their due time unmet, by policy, clock and queue.",
    ["policy", "clock", "queue"],
)
ESCALATIONS = Counter(
    "escalator_escalations",
    "Escalation steps fired, by trigger (warning, breach, unclaimed) and step number.",
    ["on", "step"],
)
AGENT_ACTIONS = Counter(
    "escalator_agent_actions",
    "Agent actions applied to cases, by type.",
    ["type"],
)
AGENT_ACTIONS_REJECTED = Counter(
    "escalator_agent_actions_rejected",
    "Agent actions refused by stage C's ownership rules, by type and reason code.",
    ["type", "code"],
)
TIMER_LAG = Histogram(
    "escalator_sla_timer_lag_seconds",
    "How late an SLA deadline was processed after it fell due (wall clock).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30),
)
RULE_EVALUATION = Histogram(
    "escalator_rule_evaluation_seconds",
    "Time to evaluate the rule tree for one message (stage C).",
    buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1),
)
DEAD_LETTERS = Counter(
    "escalator_dead_letters",
    "Records written to messages.dlq instead of being processed or written, by stage "
    "(intake, threading, cases, output, rules-watch, identity-watch) and reason.",
    ["stage", "reason"],
)
STAGE_STALLED = Gauge(
    "escalator_stage_stalled_seconds",
    "How long a stage has made no progress while its input is not empty (0: progressing "
    "or idle), by stage.",
    ["stage"],
)
