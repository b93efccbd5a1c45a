"""Stage C's own CPU per message, in process: no Kafka, no faust, the worker's code path.

For every threaded record stage C parses it, loads its case's held state, applies the
message (rules, SLA clocks, routing, acknowledgement, events), serializes the events and
the queue record, and encodes and packs the new state, exactly as `CasesStage` does per
record. The traffic is the pipeline bench's (examples/rules, 10,000 customers, one case per
customer, so later messages are follow-ups of held cases).

Baseline in the same run: the contract work every stage does anyway, parsing each threaded
record and serializing it back (`ThreadedMessage` JSON in, JSON out). The ratio of the two
is what a change to stage C moves, whatever the machine's speed; a profile by component
(`--profile`) says where the rest goes.

    .venv/bin/python bench/stage_c.py [--messages 30000] [--repeats 3] [--json] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from escalator.demo.traffic import TrafficGenerator  # noqa: E402
from escalator.settings import Settings  # noqa: E402
from escalator.wiring import load_rules  # noqa: E402
from schemas import InboundMessage, Topics  # noqa: E402
from streams.acknowledge import Acknowledger  # noqa: E402
from streams.case_state import CaseState, state_dictionary  # noqa: E402
from streams.casework import apply_message  # noqa: E402
from streams.records import ThreadedMessage  # noqa: E402
from streams.stage_context import json_record  # noqa: E402
from streams.state_store import ChangelogState, StateCodec  # noqa: E402

CUSTOMERS = 10_000
STARTED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning: business hours apply
Records = list[tuple[bytes, bytes]]


def threaded_records(count: int, seed: int = 1, customers: int = CUSTOMERS) -> Records:
    """`(case key, ThreadedMessage JSON)` for `count` messages, one case per customer."""
    generator = TrafficGenerator(customers=customers, seed=seed, invalid_share=0, duplicate_share=0)
    records: Records = []
    for index in range(count):
        message = InboundMessage.model_validate(generator.next_request().body)
        number = zlib.crc32(message.sender.encode())
        threaded = ThreadedMessage(
            case_id=f"C-{number:08X}",
            customer_id=f"cus-{number:08x}",
            opens_case=True,
            evidence="bench",
            message=message,
            ingested_at=STARTED + timedelta(milliseconds=37 * index),
        )
        records.append((threaded.case_id.encode(), threaded.model_dump_json().encode()))
    return records


def stage_c(records: Records) -> Callable[[], int]:
    """A fresh stage C over the records: returns the loop, which returns records written."""
    ruleset = load_rules(Settings(rules=REPO / "examples" / "rules"))
    topics = Topics("bench")
    acknowledger = Acknowledger()

    def run() -> int:
        store = ChangelogState(
            "cases",
            "changelog",
            "threaded",
            {},
            codec=StateCodec(state_dictionary()),
            deadline_field="next_deadline",
        )
        store.hold(0, [])
        held = store._partitions[0]  # no Kafka here: the bench keeps states as `save` does
        written = 0
        for key, value in records:
            threaded = ThreadedMessage.model_validate_json(value)
            state = store.load(0, key, CaseState)
            update = apply_message(state, threaded, ruleset, acknowledger=acknowledger)
            if not update.changed:
                continue
            case_id = update.state.case_id
            outputs = [json_record(topics.case_events, case_id, e) for e in update.events]
            if update.routed is not None:
                queue = topics.queue(update.routed.queue)
                outputs.append(json_record(queue, case_id, update.routed))
            encoded = store.encode(update.state)
            held[key] = encoded.packed  # what `save` keeps once the changelog has it
            written += len(outputs) + 1
        return written

    return run


def contract_baseline(records: Records) -> Callable[[], int]:
    """Parse each threaded record and serialize it back: the floor of any stage's work."""

    def run() -> int:
        total = 0
        for _key, value in records:
            total += len(ThreadedMessage.model_validate_json(value).model_dump_json())
        return total

    return run


def cpu_us_per_message(loop: Callable[[], int], messages: int, repeats: int) -> float:
    """The best of `repeats` runs, in process CPU µs per message."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        loop()
        best = min(best, time.process_time() - started)
    return best * 1e6 / messages


def main() -> None:
    """Time stage C and the baseline on the same records; print them and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--profile", action="store_true", help="cProfile one stage C run")
    args = parser.parse_args()
    records = threaded_records(args.messages)
    run = stage_c(records)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        return
    written = run()  # warm: compiled templates, caches, imports
    stage_us = cpu_us_per_message(run, args.messages, args.repeats)
    base_us = cpu_us_per_message(contract_baseline(records), args.messages, args.repeats)
    load = os.getloadavg()[0]
    print(f"{args.messages:,} messages, {written / args.messages:.1f} records written each")
    print(f"stage C: {stage_us:.1f} µs CPU/message (best of {args.repeats})")
    print(f"baseline (parse + serialize the threaded record): {base_us:.1f} µs CPU/message")
    print(f"stage C / baseline: {stage_us / base_us:.1f}x; load average {load:.2f}")
    if args.json:
        figures = {
            "messages": args.messages,
            "stage_c_us_per_msg": round(stage_us, 1),
            "baseline_us_per_msg": round(base_us, 1),
            "ratio": round(stage_us / base_us, 2),
            "records_per_msg": round(written / args.messages, 2),
            "load_average": round(load, 2),
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
