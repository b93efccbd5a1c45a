"""Topic names. The prefix is configurable (default `escalator.`); the suffixes are a contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

from schemas.limits import check_queue_name

DEFAULT_PREFIX = "escalator."


class _Named:
    """A topic whose name is the deployment's prefix and a fixed suffix: `topics.<attribute>`."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    @overload
    def __get__(self, topics: None, owner: type[Topics]) -> _Named: ...

    @overload
    def __get__(self, topics: Topics, owner: type[Topics]) -> str: ...

    def __get__(self, topics: Topics | None, owner: type[Topics]) -> _Named | str:
        return self if topics is None else f"{topics.prefix}{self.suffix}"


@dataclass(frozen=True)
class Topics:
    """All topic names for one deployment, derived from a prefix."""

    prefix: str = DEFAULT_PREFIX

    inbound = _Named("messages.inbound")
    """Customer messages from every connector, keyed by sender handle."""

    dlq = _Named("messages.dlq")
    """Records that could not be processed, with the reason and original bytes."""

    case_events = _Named("cases.events")
    """The audit log: every decision about every case, keyed by case id."""

    agent_actions = _Named("agent.actions")
    """Claims, replies, status changes and resolutions, keyed by case id."""

    agent_presence = _Named("agents.presence")
    """Compacted: each agent's presence (online, away, offline), keyed by agent id."""

    rules = _Named("rules")
    """Compacted: the active rule set, for hot reload across workers."""

    rules_history = _Named("rules.history")
    """One partition, kept forever: every published rule set, in order (its versions)."""

    rules_candidate = _Named("rules.candidate")
    """Compacted, one partition: the shadow rule set workers evaluate beside the active one."""

    rules_shadow = _Named("rules.shadow")
    """Where the shadow set decided otherwise than the active one, keyed by case id."""

    identity = _Named("customers.identity")
    """Compacted: handle links, merges and splits of customers, each with its reason."""

    reply_deliveries = _Named("replies.deliveries")
    """Compacted: the reply service's outcome of each delivery, its dedup memory."""

    assigner = _Named("desk.assigner")
    """Internal, one partition: the desk processes' assigner election (its group's leader)."""

    resolved = _Named("messages.resolved")
    """Internal repartition topic: valid messages re-keyed by customer id."""

    threaded = _Named("messages.threaded")
    """Internal repartition topic: messages with their case decided, keyed by case id."""

    def state_changelog(self, stage: str) -> str:
        """Internal, compacted: a worker stage's state, one partition per input partition."""
        return f"{self.prefix}worker.{stage}.changelog"

    def queue(self, name: str) -> str:
        """Routed cases of one agent queue, keyed by case id."""
        return f"{self.prefix}queue.{check_queue_name(name)}"

    queue_prefix = _Named("queue.")
    """What every queue topic name starts with."""
