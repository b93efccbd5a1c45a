"""A rule file can only name queues that can have a topic (`Topics.queue`'s rule).

Before, `tier.2` passed `escalator rules check` and the worker then failed to name its topic.
"""

from __future__ import annotations

import pytest

import rules
from schemas import Topics


@pytest.mark.parametrize("name", ["tier.2", "eu.billing"])
def test_a_queue_name_no_topic_can_have_is_refused_by_the_rules(name: str) -> None:
    text = f"version: 1\nqueues:\n  {name}: {{}}\nroutes:\n  queue: {name}\n  priority: normal\n"
    with pytest.raises(rules.RuleSetError) as caught:
        rules.compile_sources({"r.yaml": text})
    assert f"invalid name {name!r}: queue names use lowercase letters, digits, '_' and '-'" in str(
        caught.value
    )


def test_every_queue_of_a_valid_rule_set_has_a_topic() -> None:
    text = (
        "version: 1\nqueues:\n  tier-2: {}\n  billing_eu: {}\n  " + "q" * 64 + ": {}\n"
        "routes:\n  queue: tier-2\n  priority: normal\n"
    )
    ruleset = rules.compile_sources({"r.yaml": text})
    assert {Topics().queue(name) for name in ruleset.queues}
