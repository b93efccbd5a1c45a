"""Seeded SLA clock histories on the example rules, and what they print, byte for byte.

`scenario(seed)` runs one case through stage C's clock calls (`streams.sla.start_clocks`
and `run_clocks` with every kind of transition), at microsecond start times over 2026 and
2027 with many near the example calendars' daylight-saving changes and holidays, and
returns everything those calls produce as one JSON text: the `cases.events` records (ids,
reasons, payloads), the clock state as stored (`CaseClocks.to_dict`), the agents' views,
the next deadline, and the `case.routed` decision JSON with its due times.

`clock_golden.json` holds the SHA-256 of each scenario's text as the code before the
clock fast paths printed it (commit 7f42ac3). To record them again from other code:

    PYTHONPATH=<that checkout> .venv/bin/python tests/streams/clock_scenarios.py
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from rules import CompiledRuleSet, clocks, compile_sources
from schemas import InboundMessage, Priority
from streams.case_state import CaseState
from streams.sla import run_clocks, sla_view, start_clocks

GOLDEN = Path(__file__).with_name("clock_golden.json")
SEEDS = range(400)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
ESCALATION = {"standard": "standard", "vip": "vip", "legal": "legal", "community": None}
CLOCK_CHANGES = [  # Berlin and New York change their clocks
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2027, 3, 14, 7, tzinfo=UTC),
    datetime(2027, 3, 28, 1, tzinfo=UTC),
]
TOPICS = ["Where is my order?", "I was charged twice", "error 500 at login", "my lawyer"]
US_PER_DAY = 86_400_000_000

Change = Callable[[clocks.CaseClocks, clocks.ClockPolicy, datetime], clocks.Transition]


@cache
def example_rules() -> CompiledRuleSet:
    """The example rule set, as the worker loads it."""
    return compile_sources(
        {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml") if p.name != "tests.yaml"}
    )


def _start(rng: random.Random) -> datetime:
    kind = rng.random()
    if kind < 0.4:
        base = rng.choice(CLOCK_CHANGES)
        offset = rng.randrange(-3 * US_PER_DAY, 3 * US_PER_DAY)
    elif kind < 0.6:
        base = datetime(2026, 12, 18, tzinfo=UTC)  # the eu-support holidays
        offset = rng.randrange(20 * US_PER_DAY)
    else:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        offset = rng.randrange(720 * US_PER_DAY)
    return base + timedelta(microseconds=offset)


def _changes(rng: random.Random) -> dict[str, Change]:
    priority = rng.choice(list(Priority))
    return {
        "customer": clocks.customer_message,
        "reply": clocks.agent_reply,
        "wait": lambda c, p, t: clocks.status_changed(c, p, "waiting_on_customer", t),
        "open": lambda c, p, t: clocks.status_changed(c, p, "open", t),
        "priority": lambda c, p, t: clocks.priority_changed(c, p, priority, t),
        "claim": clocks.claimed,
        "release": clocks.released,
        "routed": clocks.routed,
        "ack": clocks.acknowledged,
        "due": clocks.due,
        "resolve": clocks.resolved,
        "reopen": clocks.reopened,
    }


def _message(rng: random.Random, number: int, at: datetime) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "channel": rng.choice(["email", "chat", "sms"]),
            "external_id": f"m-{number}",
            "sender": "someone@example.com",
            "text": rng.choice(TOPICS),
            "sent_at": at,
            "customer": {"id": "cus-1", "tier": rng.choice(["platinum", "standard"])},
        }
    )


def _seen(state: CaseState, events: list[Any], step: str) -> dict[str, Any]:
    views = sla_view(state) or {}
    return {
        "step": step,
        "events": [event.model_dump(mode="json") for event in events],
        "clocks": None if state.clocks is None else state.clocks.to_dict(),
        "views": {name: view.model_dump(mode="json") for name, view in views.items()},
        "next_deadline": None if state.next_deadline is None else state.next_deadline.isoformat(),
        "case": [state.queue, None if state.priority is None else state.priority.value, state.tags],
    }


def scenario(seed: int) -> str:
    """One case's clock history for `seed`, as canonical JSON text."""
    rng = random.Random(seed)
    ruleset = example_rules()
    at = _start(rng)
    decision = ruleset.evaluate(_message(rng, 0, at), None, at)
    policy = rng.choice([*sorted(ruleset.sla_policies), decision.sla_policy or "standard"])
    state = CaseState(case_id=f"C-{seed:010d}", customer_id="cus-1", opened_at=at)
    state.priority = rng.choice(sorted(ruleset.sla_policies[policy].targets))
    state.queue = state.decided_queue = "general"
    state.sla_policy = policy
    state.escalation_policy = ESCALATION.get(policy or "")
    state.policy_rule = rng.choice([None, "vip-customers", "legal-threat"])
    seen = [
        {"decision": decision.to_json()},
        _seen(state, start_clocks(state, ruleset, at), "start"),
    ]
    changes = _changes(rng)
    for number in range(1, rng.randint(3, 9)):
        at += timedelta(microseconds=rng.randrange(rng.choice([3_600, 86_400, 4 * 86_400]) * 10**6))
        step = rng.choice(sorted(changes))
        seen.append(_seen(state, run_clocks(state, ruleset, changes[step], at), step))
        if rng.random() < 0.3:
            facts = state.facts(at)
            seen.append(
                {"decision": ruleset.evaluate(_message(rng, number, at), facts, at).to_json()}
            )
    return json.dumps(seen, sort_keys=True)


def digest(seed: int) -> str:
    """SHA-256 of `scenario(seed)`."""
    return hashlib.sha256(scenario(seed).encode()).hexdigest()


def main() -> None:
    """Record every seed's digest in `clock_golden.json`."""
    digests = {str(seed): digest(seed) for seed in SEEDS}
    GOLDEN.write_text(json.dumps(digests, indent=0) + "\n")
    source = Path(sys.modules["rules"].__file__ or "").parent.parent
    print(f"{len(digests)} digests of the code in {source} written to {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    main()
