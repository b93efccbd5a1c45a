"""Stage C's clock calls print exactly what the release before the clock fast paths printed.

Event ids, reasons, payloads, stored clock state and decision JSON feed replay after a
crash and a worker of the next release reading the previous one's state, so the fast paths
(`rules._sla_policy.deadlines` on microseconds, the calendars' caches, remembered texts and
policies) must not change a byte. `clock_scenarios.py` says how the digests were recorded.
"""

from __future__ import annotations

import json

import pytest

from tests.streams.clock_scenarios import GOLDEN, SEEDS, digest, scenario


def test_every_seed_has_a_recorded_digest() -> None:
    assert sorted(json.loads(GOLDEN.read_text()), key=int) == [str(seed) for seed in SEEDS]


@pytest.mark.parametrize("chunk", range(8))
def test_clock_histories_print_as_recorded(chunk: int) -> None:
    recorded = json.loads(GOLDEN.read_text())
    differing = [seed for seed in SEEDS[chunk::8] if digest(seed) != recorded[str(seed)]]
    assert not differing, (
        f"seeds {differing} print differently; first: {scenario(differing[0])[:2000]}"
        if differing
        else ""
    )


def test_a_scenario_runs_the_same_twice_in_one_process() -> None:
    # the second run meets warm caches (due times, texts, policies): still the same bytes
    assert [digest(seed) for seed in SEEDS[:40]] == [digest(seed) for seed in SEEDS[:40]]
