"""Fuzzing the worker's inputs as raw Kafka records: `messages.inbound` and `agent.actions`.

Anyone who can write to these topics (a user's own connector, a desk of another release, a
bug) can put any bytes there. Whatever a record holds, the stage that reads it either takes
it or dead-letters it with its reason and its original bytes, and goes on: the batch never
raises, and every inbound record is accounted for.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schemas import DeadLetter
from tests.fuzz.strategies import BODIES, FUZZ, JSON
from tests.streams.test_poison import TOPICS, Stages, event

KEYS = st.one_of(st.none(), st.binary(max_size=64), st.just(b"ana@example.com"))

ACTION_FIELDS = ("type", "case_id", "agent_id", "at", "text", "status", "queue", "to_agent")


@st.composite
def near_actions(draw: st.DrawFn) -> dict[str, Any]:
    """An agent action with some fields replaced, removed or added at random."""
    action: dict[str, Any] = {
        "action_id": draw(st.text(min_size=1, max_size=40)),
        "case_id": "C-AAAAAAAAAA",
        "agent_id": "sam",
        "type": draw(st.sampled_from(["claim", "reply", "transfer", "status", "resolve"])),
        "at": "2027-01-04T09:00:00Z",
    }
    for name in draw(st.lists(st.sampled_from(ACTION_FIELDS), max_size=3, unique=True)):
        if draw(st.booleans()):
            action[name] = draw(JSON)
        else:
            action.pop(name, None)
    return action


ACTIONS = st.one_of(BODIES, near_actions().map(lambda action: json.dumps(action).encode()))


@FUZZ
@given(
    records=st.lists(
        st.tuples(KEYS, BODIES),
        min_size=1,
        max_size=8,
    )
)
def test_intake_takes_or_dead_letters_every_inbound_record(
    records: list[tuple[bytes | None, bytes]],
) -> None:
    stages = Stages()
    batch = [
        event(TOPICS.inbound, key, value, offset) for offset, (key, value) in enumerate(records)
    ]
    asyncio.run(stages.pipeline.intake_batch(batch))
    letters = stages.letters()
    assert len(stages.on(TOPICS.resolved)) + len(letters) == len(records)
    for letter in letters:
        assert letter.reason and letter.source_topic == TOPICS.inbound
        original = records[letter.source_offset][1]
        assert letter.original_omitted or letter.original_bytes() == original


@FUZZ
@given(records=st.lists(st.tuples(KEYS, ACTIONS), min_size=1, max_size=8))
def test_the_cases_stage_takes_or_dead_letters_every_agent_action(
    records: list[tuple[bytes | None, bytes]],
) -> None:
    stages = Stages()
    batch = [
        event(TOPICS.agent_actions, key, value, offset)
        for offset, (key, value) in enumerate(records)
    ]
    asyncio.run(stages.pipeline.cases_batch(batch))
    for letter in stages.letters():
        assert isinstance(letter, DeadLetter) and letter.reason
        assert letter.source_topic == TOPICS.agent_actions
