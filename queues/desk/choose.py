"""Which agent gets a case: eligibility (presence, skills, capacity) and the queue's strategy.

Pure functions over plain values, so the assigner and pull-mode `next` decide alike and
unit tests need no database. Every choice comes with its reason in words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from queues.desk.directory import Agent, Presence, QueueSettings, Strategy

SKILL_TAG_PREFIX = "skill:"
"""A case tag `skill:NAME` (set by a rule) requires the skill NAME of its agent."""

_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Candidate:
    """An agent with what the choice needs to know about them right now."""

    agent: Agent
    load: Counter[str]
    """Active cases by channel."""
    last_assigned: datetime | None = None

    @property
    def total_load(self) -> int:
        """Active cases on every channel."""
        return sum(self.load.values())


@dataclass(frozen=True)
class Choice:
    """The agent chosen for a case, and why."""

    agent: str
    reason: str


def required_skills(queue: QueueSettings | None, tags: Iterable[str]) -> frozenset[str]:
    """Skills an agent needs for a case: the queue's and the case's `skill:` tags."""
    from_tags = {t[len(SKILL_TAG_PREFIX) :] for t in tags if t.startswith(SKILL_TAG_PREFIX)}
    return frozenset(from_tags) | (queue.skills if queue is not None else frozenset())


def has_room(candidate: Candidate, channel: str | None) -> bool:
    """Whether the agent takes one more case on `channel`."""
    return candidate.load[channel or "*"] < candidate.agent.capacity_for(channel)


def why_not(
    candidate: Candidate, channel: str | None, skills: frozenset[str], *, online: bool = True
) -> str | None:
    """Why this agent cannot take the case now, or None; `online=False` skips presence."""
    agent = candidate.agent
    if online and agent.presence is not Presence.ONLINE:
        return f"{agent.name} is {agent.presence.value}"
    missing = skills - agent.skills
    if missing:
        return f"{agent.name} lacks {', '.join(sorted(missing))}"
    if not has_room(candidate, channel):
        limit = agent.capacity_for(channel)
        return f"{agent.name} is at capacity ({limit} {channel or 'cases'})"
    return None


def choose(
    strategy: Strategy,
    channel: str | None,
    skills: frozenset[str],
    candidates: Sequence[Candidate],
) -> Choice | None:
    """The agent the strategy picks among those who can take the case, or None."""
    eligible = [c for c in candidates if why_not(c, channel, skills) is None]
    if not eligible:
        return None
    count = f"{len(eligible)} eligible"
    if strategy is Strategy.ROUND_ROBIN:
        best = min(eligible, key=lambda c: (c.last_assigned or _NEVER, c.agent.name))
        return Choice(best.agent.name, f"round robin: {best.agent.name} is next ({count})")
    if strategy is Strategy.SKILLS:
        best = min(
            eligible,
            key=lambda c: (
                len(c.agent.skills - skills),
                c.total_load,
                c.last_assigned or _NEVER,
                c.agent.name,
            ),
        )
        needed = ", ".join(sorted(skills)) or "no particular skills"
        extra = len(best.agent.skills - skills)
        return Choice(
            best.agent.name,
            f"skills: {best.agent.name} has {needed} with {extra} other skills and "
            f"{best.total_load} open cases, the closest match ({count})",
        )
    best = min(
        eligible,
        key=lambda c: (
            c.total_load,
            c.load[channel or "*"],
            c.last_assigned or _NEVER,
            c.agent.name,
        ),
    )
    return Choice(
        best.agent.name,
        f"least loaded: {best.agent.name} has {best.total_load} open cases ({count})",
    )
