"""Stage C's hot path with and without a shadow rule set (`rules publish --shadow`).

Stage C applies each customer message to its case (`streams.casework.apply_message`):
rules, clocks, events. With a shadow set it also decides the message with the shadow set
and compares (`streams.shadow.ShadowCheck`). This bench replays the same messages through
that one function, each on the very case state stage C had before it, in four ways:

- **no shadow**: the baseline, measured in the same run;
- **same set as shadow**: the cost of a second decision and the comparison alone;
- **disagreeing shadow**: the example rules with billing moved to tier 2 and a tighter
  standard SLA (most messages disagree): decision, comparison and disagreement records;
- the example rules' own decision time (`evaluate` only), for scale.

Prints µs per message (best of `--repeat` runs) and the ratio to the baseline.

    .venv/bin/python bench/shadow_cost.py [--messages 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backtest import EXAMPLES, WEEK, WEEK_START, candidate_files, generate

import streams.simulation as simulation
from rules import CompiledRuleSet, compile_sources
from schemas import InboundMessage, Topics
from streams.case_state import CaseState
from streams.casework import apply_message
from streams.records import ThreadedMessage
from streams.shadow import ShadowCheck


def _rules(folder: Path) -> CompiledRuleSet:
    return compile_sources(
        {p.name: p.read_text() for p in folder.glob("*.yaml") if p.name != "tests.yaml"}
    )


def stage_c_inputs(
    ruleset: CompiledRuleSet, messages: int
) -> list[tuple[CaseState | None, ThreadedMessage]]:
    """Every (case state, threaded message) stage C met while a week of messages came in."""
    inbound, _actions = generate(messages)
    seen: list[tuple[CaseState | None, ThreadedMessage]] = []
    real = simulation.apply_message

    def recording(state: CaseState | None, threaded: ThreadedMessage, rules: Any) -> Any:
        seen.append((state, threaded))
        return real(state, threaded, rules)

    simulation.apply_message = recording  # type: ignore[assignment]
    try:
        worker = simulation.SimulatedWorker(ruleset, lambda _state, _events: None)
        for raw in sorted(inbound, key=lambda m: m["sent_at"]):
            message = InboundMessage.model_validate(raw)
            worker.message(message, message.sent_at)
        worker.finish(WEEK_START + WEEK + timedelta(days=1))
    finally:
        simulation.apply_message = real
    return seen


def timed(run: Callable[[], Any], repeat: int) -> float:
    """Best wall time of `repeat` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    active = _rules(EXAMPLES)
    with tempfile.TemporaryDirectory() as scratch:
        candidate = _rules(candidate_files(Path(scratch)))
    inputs = stage_c_inputs(active, args.messages)
    topic = Topics().rules_shadow
    records: list[int] = []

    def stage_c(shadow: CompiledRuleSet | None) -> Callable[[], None]:
        def run() -> None:
            check = ShadowCheck(shadow, topic) if shadow is not None else None
            for state, threaded in inputs:
                hook = check.for_case(threaded.case_id) if check is not None else None
                apply_message(state, threaded, active, hook)
            if check is not None:
                records.append(len(check.records))

        return run

    def decide_only() -> None:
        for state, threaded in inputs:
            facts = state.facts(threaded.arrived_at, threaded.history_facts()) if state else None
            active.evaluate(threaded.message, facts, threaded.arrived_at)

    count = len(inputs)
    print(f"{count:,} stage C messages from {args.messages:,} generated; best of {args.repeat}")
    base = timed(stage_c(None), args.repeat)
    rows = [
        ("no shadow (baseline)", base),
        ("same set as shadow", timed(stage_c(active), args.repeat)),
        ("disagreeing shadow", timed(stage_c(candidate), args.repeat)),
        ("rule decision alone (evaluate)", timed(decide_only, args.repeat)),
    ]
    disagreeing = records[-1] if records else 0
    print(f"disagreeing shadow: {disagreeing:,} of {count:,} messages disagree")
    print("| stage C | µs/message | vs baseline |\n|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds / count * 1e6:,.1f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
