"""Topic names. The prefix is configurable (default `escalator.`); the suffixes are a contract."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.limits import check_queue_name

DEFAULT_PREFIX = "escalator."


@dataclass(frozen=True)
class Topics:
    """All topic names for one deployment, derived from a prefix."""

    prefix: str = DEFAULT_PREFIX

    @property
    def inbound(self) -> str:
        """Customer messages from every connector, keyed by sender handle."""
        return f"{self.prefix}messages.inbound"

    @property
    def dlq(self) -> str:
        """Records that could not be processed, with the reason and original bytes."""
        return f"{self.prefix}messages.dlq"

    @property
    def case_events(self) -> str:
        """The audit log: every decision about every case, keyed by case id."""
        return f"{self.prefix}cases.events"

    @property
    def agent_actions(self) -> str:
        """Claims, replies, status changes and resolutions, keyed by case id."""
        return f"{self.prefix}agent.actions"

    @property
    def agent_presence(self) -> str:
        """Compacted: each agent's presence (online, away, offline), keyed by agent id."""
        return f"{self.prefix}agents.presence"

    @property
    def rules(self) -> str:
        """Compacted: the active rule set, for hot reload across workers."""
        return f"{self.prefix}rules"

    @property
    def rules_history(self) -> str:
        """One partition, kept forever: every published rule set, in order (its versions)."""
        return f"{self.prefix}rules.history"

    @property
    def identity(self) -> str:
        """Compacted: handle links, merges and splits of customers, each with its reason."""
        return f"{self.prefix}customers.identity"

    @property
    def reply_deliveries(self) -> str:
        """Compacted: the reply service's outcome of each delivery, its dedup memory."""
        return f"{self.prefix}replies.deliveries"

    @property
    def assigner(self) -> str:
        """Internal, one partition: the desk processes' assigner election (its group's leader)."""
        return f"{self.prefix}desk.assigner"

    @property
    def resolved(self) -> str:
        """Internal repartition topic: valid messages re-keyed by customer id."""
        return f"{self.prefix}messages.resolved"

    @property
    def threaded(self) -> str:
        """Internal repartition topic: messages with their case decided, keyed by case id."""
        return f"{self.prefix}messages.threaded"

    def state_changelog(self, stage: str) -> str:
        """Internal, compacted: a worker stage's state, one partition per input partition."""
        return f"{self.prefix}worker.{stage}.changelog"

    def queue(self, name: str) -> str:
        """Routed cases of one agent queue, keyed by case id."""
        return f"{self.prefix}queue.{check_queue_name(name)}"

    @property
    def queue_prefix(self) -> str:
        """What every queue topic name starts with."""
        return f"{self.prefix}queue."
