"""`escalator rules backtest` on a generated week: 100,000 customer messages and their agents.

The history is Northwind's week (Monday 2027-01-04 to the next Monday, UTC): customers
writing on every channel, some of them VIPs, follow-ups, and agents claiming, replying,
parking and resolving most cases. It is written as the JSONL files `rules backtest
--messages/--actions` reads, and the timed part is exactly what that command does: read
the files, replay them through the example rule set (the baseline) and a candidate that
tightens the standard SLA and moves billing to tier 2, and compare. Target: under a minute.

    .venv/bin/python bench/backtest.py [--messages 100000] [--serial] [--profile]
        [--without-actions]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from escalator.rules_backtest import Backtest, run_backtest
from rules import compile_sources
from schemas import InboundMessage
from schemas.ids import case_id_for

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "rules"
SEED = 20270104
WEEK_START = datetime(2027, 1, 4, tzinfo=UTC)
WEEK = timedelta(days=7)
CHANNELS = ["email", "email", "email", "chat", "webform", "sms", "twitter", "facebook"]
TOPICS = [
    "Where is my order?",
    "I was charged twice, please refund the double charge",
    "I want to return these shoes, wrong size",
    "The app shows error 500 when I login",
    "Can I change my delivery address?",
    "My invoice is missing the VAT number",
    "Your service is terrible, I am furious and want my money back",
    "Hello, any news on my question?",
    "I will talk to my lawyer about this",
    "Someone logged in to my account, I think I was hacked",
]


def generate(messages: int, seed: int = SEED) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A week of inbound messages and agent actions (as JSON objects), deterministic per seed."""
    rng = random.Random(seed)
    inbound: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    customer = 0
    while len(inbound) < messages:
        customer += 1
        customer_id = f"cust-{customer:06d}"
        tier = "platinum" if rng.random() < 0.05 else "standard"
        channel = rng.choice(CHANNELS)
        start = WEEK_START + timedelta(seconds=rng.uniform(0, WEEK.total_seconds() - 3600))
        contacts = min(1 + int(rng.expovariate(1.0)), 5, messages - len(inbound))
        first = start
        case_id: str | None = None
        for n in range(contacts):
            at = first + timedelta(minutes=n * rng.uniform(20, 240))
            if at >= WEEK_START + WEEK:
                break
            message = {
                "channel": channel if rng.random() < 0.8 else rng.choice(CHANNELS),
                "external_id": f"{customer_id}-{n}",
                "sender": f"{customer_id}@example.com",
                "text": rng.choice(TOPICS),
                "sent_at": _iso(at),
                "customer": {"id": customer_id, "tier": tier},
            }
            inbound.append(message)
            if case_id is None:
                case_id = _case_id(customer_id, message)
        if case_id is None or rng.random() < 0.1:
            continue  # nobody answers this one within the week
        agent = f"agent-{rng.randrange(60):02d}"
        claim = first + timedelta(minutes=rng.uniform(1, 180))
        reply = claim + timedelta(minutes=rng.uniform(1, 120))
        plan = [
            ("claim", claim, {}),
            ("reply", reply, {"text": "Thanks, we are on it."}),
        ]
        if rng.random() < 0.3:
            plan.append(("status", reply + timedelta(minutes=1), {"status": "waiting_on_customer"}))
        if rng.random() < 0.7:
            plan.append(("resolve", reply + timedelta(hours=rng.uniform(1, 30)), {}))
        for number, (kind, at, extra) in enumerate(plan):
            if at < WEEK_START + WEEK:
                actions.append(
                    {
                        "action_id": f"{case_id}-{number}",
                        "case_id": case_id,
                        "agent_id": agent,
                        "type": kind,
                        "at": _iso(at),
                        **extra,
                    }
                )
    return inbound, actions


def _case_id(customer_id: str, message: dict[str, Any]) -> str:
    return case_id_for(customer_id, InboundMessage.model_validate(message).message_key)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def candidate_files(folder: Path) -> Path:
    """The example rules with a tighter standard SLA and billing moved to tier 2."""
    for source in EXAMPLES.glob("*.yaml"):
        text = source.read_text()
        if source.name == "policies.yaml":
            text = text.replace(
                "normal: {first_response: 8h, next_response: 1d",
                "normal: {first_response: 4h, next_response: 1d",
            )
        if source.name == "routes.yaml":
            text = text.replace("      queue: billing\n", "      queue: tier2\n")
        if source.name != "tests.yaml":
            (folder / source.name).write_text(text)
    return folder


def main() -> None:
    """Generate the week, time the backtest, print msg/s and seconds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--serial", action="store_true", help="Replay both sets in one process.")
    parser.add_argument("--profile", action="store_true", help="Profile (serial) and print.")
    parser.add_argument(
        "--without-actions", action="store_true", help="Replay the messages alone (no agents)."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        inbound, actions = generate(args.messages)
        messages_file, actions_file = folder / "messages.jsonl", folder / "actions.jsonl"
        messages_file.write_text("".join(json.dumps(m) + "\n" for m in inbound))
        actions_file.write_text("".join(json.dumps(a) + "\n" for a in actions))
        (folder / "candidate").mkdir()
        candidate = candidate_files(folder / "candidate")
        baseline = compile_sources(
            {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml") if p.name != "tests.yaml"}
        )
        proposed = compile_sources({p.name: p.read_text() for p in candidate.glob("*.yaml")})
        print(
            f"history: {len(inbound):,} messages and "
            f"{0 if args.without_actions else len(actions):,} agent actions, "
            f"{WEEK_START:%Y-%m-%d} + 7 days; {os.cpu_count()} cores",
            flush=True,
        )
        job = Backtest(
            baseline=baseline,
            candidate=proposed,
            messages=messages_file,
            actions=None if args.without_actions else actions_file,
            until=WEEK_START + WEEK,
            parallel=not (args.serial or args.profile),
        )
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        report = run_backtest(job, progress=_progress)
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - started
        print(
            f"\n{report['cases']:,} cases, {len(report['changed']):,} differences; "
            f"breaches {report['breaches']['before']:,} → {report['breaches']['after']:,}"
        )
        replayed = len(inbound) + (0 if args.without_actions else len(actions))
        print(
            f"total: {seconds:.2f} s, {len(inbound) / seconds:,.0f} msg/s "
            f"({replayed / seconds:,.0f} records/s)"
        )
        if len(inbound) < 100_000:
            verdict = "not measured at full size"
        else:
            verdict = "met" if seconds < 60 else "NOT met"
        print(f"target (100,000 messages in under 60 s): {verdict}")
        if profiler is not None:
            pstats.Stats(profiler).sort_stats(
                "tottime" if os.environ.get("BY_TOTTIME") else "cumulative"
            ).print_stats(35)


def _progress(done: int, total: int) -> None:
    print(f"\r  replayed {done:,} of {total:,} records", end="", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
