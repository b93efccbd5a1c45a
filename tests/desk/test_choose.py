"""Who gets a case: eligibility and the three strategies, each choice with its reason."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from queues.desk.choose import Candidate, choose, required_skills, why_not
from queues.desk.directory import Agent, Mode, Presence, QueueSettings, Role, Strategy

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def agent(name: str, *skills: str, presence: Presence = Presence.ONLINE, **capacity: int) -> Agent:
    return Agent(
        name=name,
        role=Role.AGENT,
        skills=frozenset(skills),
        capacity=capacity or {"*": 5},
        presence=presence,
        presence_at=T0,
    )


def candidate(a: Agent, last_minutes_ago: int | None = None, **load: int) -> Candidate:
    last = None if last_minutes_ago is None else T0 - timedelta(minutes=last_minutes_ago)
    return Candidate(a, Counter(load), last)


NONE: frozenset[str] = frozenset()


def test_least_loaded_picks_the_fewest_open_cases_then_fewest_on_the_channel_then_idle() -> None:
    candidates = [
        candidate(agent("ana"), 1, email=2),
        candidate(agent("bo"), 1, chat=1),
        candidate(agent("cy"), 5, email=1),
    ]
    picked = choose(Strategy.LEAST_LOADED, "email", NONE, candidates)
    assert picked is not None
    assert (picked.agent, picked.reason) == ("bo", "least loaded: bo has 1 open cases (3 eligible)")
    picked = choose(Strategy.LEAST_LOADED, "chat", NONE, candidates)
    assert picked is not None and picked.agent == "cy"  # 1 case each; cy has none on chat


def test_round_robin_picks_whoever_waited_longest_and_never_assigned_first() -> None:
    candidates = [
        candidate(agent("ana"), 2, email=0),
        candidate(agent("bo"), 9, email=4),
        candidate(agent("cy"), None),
    ]
    picked = choose(Strategy.ROUND_ROBIN, "email", NONE, candidates)
    assert picked is not None and picked.agent == "cy"
    picked = choose(Strategy.ROUND_ROBIN, "email", NONE, candidates[:2])
    assert picked is not None and picked.agent == "bo"


def test_skills_needs_every_skill_and_prefers_the_closest_match_then_load() -> None:
    needed = frozenset({"billing"})
    candidates = [
        candidate(agent("generalist", "billing", "german", "refunds")),
        candidate(agent("biller", "billing"), email=2),
        candidate(agent("other-biller", "billing"), email=1),
        candidate(agent("novice")),
    ]
    picked = choose(Strategy.SKILLS, "email", needed, candidates)
    assert picked is not None and picked.agent == "other-biller"
    assert picked.reason.startswith("skills: other-biller has billing with 0 other skills")
    assert choose(Strategy.SKILLS, "email", frozenset({"klingon"}), candidates) is None


def test_eligibility_presence_skills_and_capacity_per_channel() -> None:
    busy = candidate(agent("ana", chat=2, email=10), chat=2, email=3)
    assert why_not(busy, "chat", NONE) == "ana is at capacity (2 chat)"
    assert why_not(busy, "email", NONE) is None
    away = candidate(agent("bo", presence=Presence.AWAY))
    assert why_not(away, "email", NONE) == "bo is away"
    assert why_not(away, "email", NONE, online=False) is None
    assert why_not(candidate(agent("cy")), "email", frozenset({"german"})) == "cy lacks german"
    assert choose(Strategy.LEAST_LOADED, "chat", NONE, [busy, away]) is None


def test_required_skills_come_from_the_queue_and_skill_tags() -> None:
    queue = QueueSettings("billing", Strategy.SKILLS, Mode.PUSH, frozenset({"billing"}), 60)
    assert required_skills(queue, ["vip", "skill:german"]) == {"billing", "german"}
    assert required_skills(None, ["vip"]) == frozenset()
