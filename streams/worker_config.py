"""What the composition root decides for a worker, and the rule set it runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules import CompiledRuleSet
from schemas import Topics
from schemas.links import EscalationLinks
from streams import metrics
from streams.output import MAX_RECORD_BYTES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    """What the composition root decides for a worker."""

    broker_url: str
    topics: Topics
    partitions: int = 4
    app_id: str = "escalator-worker"
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    data_dir: str = "var/worker"
    batch_max: int = 1000
    batch_within_seconds: float = 0.01
    faust_settings: Mapping[str, Any] = field(default_factory=dict)
    sla_tick_seconds: float = 0.2
    """Longest SLA timer sleep: it wakes at the next deadline, and at least this often."""
    sla_lateness_seconds: float = 0.1
    """How long after a deadline the timer fires it, so actions stamped before it land first."""
    sla_prepare_seconds: float = 60.0
    """How far ahead the timer computes firings while idle (0: never ahead)."""
    sla_prepare_limit: int = 20_000
    """Most firings kept computed ahead (bounds their memory: a few KB each)."""
    connection: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """librdkafka connection settings, for restoring state from the changelogs."""
    stall_seconds: float = 60.0
    """A stage with input waiting and no progress this long makes `/readyz` fail (0: never)."""
    max_record_bytes: int = MAX_RECORD_BYTES
    """Largest record written; a larger one is replaced by a dead letter referring to it."""
    fetch_max_wait_ms: int | None = None
    """Longest wait of the consumer's fetch requests (None: faust's fixed 1,500 ms)."""
    escalate_links: EscalationLinks | None = None
    """Signs acknowledgements' `links.escalate` (None: the link is empty)."""


class RuleSetHolder:
    """The rule set in use; swapped atomically between two batches by hot reload."""

    def __init__(self, ruleset: CompiledRuleSet) -> None:
        self._ruleset = ruleset
        self._shadow: CompiledRuleSet | None = None
        metrics.RULES_INFO.labels(ruleset.version).set(1)
        log.info("rule set %s in use", ruleset.version)

    @property
    def current(self) -> CompiledRuleSet:
        """The rule set to evaluate the next message with (and its queues and policies)."""
        return self._ruleset

    def replace(self, ruleset: CompiledRuleSet) -> None:
        """Switch to a new rule set (takes effect from the next batch, between two messages)."""
        if ruleset.version == self._ruleset.version:
            return
        metrics.RULES_INFO.labels(self._ruleset.version).set(0)
        self._ruleset = ruleset
        metrics.RULES_INFO.labels(ruleset.version).set(1)
        log.info("rule set %s in use", ruleset.version)

    @property
    def shadow(self) -> CompiledRuleSet | None:
        """The shadow set stage C evaluates beside the current one, never acting on it."""
        return self._shadow

    def replace_shadow(self, ruleset: CompiledRuleSet | None) -> None:
        """Start, switch or (None) stop the shadow set, from the next batch on."""
        if self._shadow is not None:
            metrics.SHADOW_INFO.labels(self._shadow.version).set(0)
        self._shadow = ruleset
        if ruleset is not None:
            metrics.SHADOW_INFO.labels(ruleset.version).set(1)
        log.info("shadow rule set: %s", ruleset.version if ruleset else "none")
