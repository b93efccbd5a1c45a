"""Stage C's SLA clock work per call, on the example rules (issue 13).

Times, without Kafka and without the rest of stage C, the clock calls stage C makes for a
customer message (`streams.casework._run_clocks_for_message` and the `case.routed` event):

- **start_clocks**: a new case's clocks started under its policy (`streams.sla.start_clocks`);
- **run_clocks (customer message)**: a follow-up message on a case whose clocks run
  (`streams.sla.run_clocks` with `rules.clocks.customer_message`), half of them after an
  agent reply (so `next_response` starts), some late enough that warnings, breaches and
  escalation steps fall due on the way;
- **Decision.to_json**: a fresh decision's JSON for `case.routed`, due times included (they
  are worked out when first read, so this is where a decision pays for them);
- **CaseClocks.to_dict**: a started case's clock state as its JSON data (each state write);
- **new case**: a case's clocks started under the policy its decision chose, then that
  decision's `to_json`, in stage C's order (the decision's due times are the clocks' own).

Start times are `--starts` instants spread over 2026 and 2027 (daylight-saving changes and
the example calendars' holidays included), to the microsecond, with every example SLA
policy and each priority it targets. Each figure is the best of `--repeat` passes over all
of them, in µs per call.

    .venv/bin/python bench/clock_cost.py [--starts 3000] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules import CompiledRuleSet, Decision, clocks, compile_sources
from rules._decision import CaseFacts
from schemas import CaseStatus, InboundMessage
from streams.case_state import CaseState
from streams.sla import run_clocks, start_clocks

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rules"
SEED = 20261205
FIRST = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
ESCALATION = {"standard": "standard", "vip": "vip", "legal": "legal", "community": None}


def example_rules() -> CompiledRuleSet:
    """The example rule set, as the worker loads it."""
    return compile_sources(
        {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml") if p.name != "tests.yaml"}
    )


def start_times(count: int, rng: random.Random) -> list[datetime]:
    """`count` instants over two years, to the microsecond."""
    span_us = SPAN // timedelta(microseconds=1)
    return [FIRST + timedelta(microseconds=rng.randrange(span_us)) for _ in range(count)]


def new_cases(ruleset: CompiledRuleSet, starts: list[datetime], rng: random.Random) -> list[Any]:
    """A routed, not yet clocked case per start: (state, at), each policy and priority mixed."""
    cases = []
    for number, at in enumerate(starts):
        name = rng.choice(sorted(ruleset.sla_policies))
        priorities = sorted(ruleset.sla_policies[name].targets)
        state = CaseState(case_id=f"C-{number:010d}", customer_id=f"cus-{number}", opened_at=at)
        state.priority = rng.choice(priorities)
        state.queue = state.decided_queue = "general"
        state.sla_policy = name
        state.escalation_policy = ESCALATION[name]
        state.policy_rule = "bench"
        cases.append((state, at))
    return cases


def follow_ups(ruleset: CompiledRuleSet, cases: list[Any], rng: random.Random) -> list[Any]:
    """Each case with its clocks started, some replied to, and a customer message after."""
    follow = []
    for new, opened in cases:
        state = new.model_copy(deep=True)
        start_clocks(state, ruleset, opened)
        state.status = CaseStatus.OPEN
        at = opened + timedelta(minutes=rng.expovariate(1 / 240))
        if rng.random() < 0.5:
            reply = opened + (at - opened) * rng.random()
            run_clocks(state, ruleset, clocks.agent_reply, reply)
        follow.append((state, at))
    return follow


def decisions(ruleset: CompiledRuleSet, starts: list[datetime], rng: random.Random) -> list[Any]:
    """Inputs of `evaluate` for new cases: (message, facts, at)."""
    topics = ["Where is my order?", "I was charged twice", "error 500 when I login", "lawyer"]
    inputs = []
    for number, at in enumerate(starts):
        tier = "platinum" if rng.random() < 0.1 else "standard"
        message = InboundMessage.model_validate(
            {
                "channel": rng.choice(["email", "chat", "sms", "webform"]),
                "external_id": f"m-{number}",
                "sender": f"c{number}@example.com",
                "text": rng.choice(topics),
                "sent_at": at,
                "customer": {"id": f"cus-{number}", "tier": tier},
            }
        )
        inputs.append((message, CaseFacts(priority=None), at))
    return inputs


def per_call(prepare: Callable[[], list[Any]], call: Callable[[Any], object], repeat: int) -> float:
    """Best µs per call over `repeat` passes; `prepare` (not timed) gives each pass's inputs."""
    best = float("inf")
    for _ in range(repeat):
        items = prepare()
        started = time.perf_counter()
        for item in items:
            call(item)
        best = min(best, (time.perf_counter() - started) / len(items))
    return best * 1e6


def measure(starts: int, repeat: int, seed: int) -> dict[str, Any]:
    """Every figure of the bench, µs per call."""
    rng = random.Random(seed)
    ruleset = example_rules()
    moments = start_times(starts, rng)
    cases = new_cases(ruleset, moments, rng)
    follow = follow_ups(ruleset, cases, rng)
    inputs = decisions(ruleset, moments, rng)

    def fresh(pairs: list[Any]) -> Callable[[], list[Any]]:
        return lambda: [(state.model_copy(), at) for state, at in pairs]

    start_us = per_call(fresh(cases), lambda item: start_clocks(item[0], ruleset, item[1]), repeat)
    follow_us = per_call(
        fresh(follow),
        lambda item: run_clocks(item[0], ruleset, clocks.customer_message, item[1]),
        repeat,
    )
    to_json_us = per_call(
        lambda: [ruleset.evaluate(*given) for given in inputs], Decision.to_json, repeat
    )

    def routed_cases() -> list[Any]:
        pairs = []
        for number, given in enumerate(inputs):
            decision, at = ruleset.evaluate(*given), given[2]
            state = CaseState(case_id=f"R-{number:010d}", customer_id="cus", opened_at=at)
            state.priority = decision.priority
            state.sla_policy = decision.sla_policy
            state.escalation_policy = decision.escalation_policy
            state.policy_rule = decision.matched[-1] if decision.matched else None
            pairs.append((state, decision, at))
        return pairs

    def new_case(item: Any) -> None:  # in stage C's order: clocks, then `case.routed`
        state, decision, at = item
        start_clocks(state, ruleset, at)
        decision.to_json()

    together_us = per_call(routed_cases, new_case, repeat)
    started = [state.clocks for state, _at in follow]
    to_dict_us = per_call(lambda: started, clocks.CaseClocks.to_dict, repeat)
    return {
        "starts": starts,
        "repeat": repeat,
        "start_clocks_us": round(start_us, 2),
        "customer_message_run_clocks_us": round(follow_us, 2),
        "decision_to_json_us": round(to_json_us, 2),
        "case_clocks_to_dict_us": round(to_dict_us, 2),
        "new_case_start_and_to_json_us": round(together_us, 2),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def main() -> None:
    """Measure and print the table (and, with --json, one JSON line last)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=3000, help="varied start times")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the best counts")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    args = parser.parse_args()
    result = measure(args.starts, args.repeat, args.seed)
    print(f"{args.starts:,} start times over 2026-2027, example rules; best of {args.repeat}")
    print("| call | µs/call |\n|---|---:|")
    for label, key in (
        ("start_clocks (new case)", "start_clocks_us"),
        ("run_clocks (customer message)", "customer_message_run_clocks_us"),
        ("Decision.to_json (fresh decision)", "decision_to_json_us"),
        ("CaseClocks.to_dict", "case_clocks_to_dict_us"),
        ("new case: start_clocks, then its decision's to_json", "new_case_start_and_to_json_us"),
    ):
        print(f"| {label} | {result[key]:,.1f} |")
    print(f"load average {result['load_average']}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
