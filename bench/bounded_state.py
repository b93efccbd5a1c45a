"""One case with 2,000 messages: what stages B and C keep and write per message stays bounded.

Issue 13 asks that per-case and per-customer records stay bounded whatever the history. One
customer writes 2,000 messages into the same open case (an agent answers every tenth), and
the bench records, at the 20th, 100th, 500th, 1,000th and 2,000th message:

- the case state stage C keeps (JSON, and compressed as the worker holds it in memory),
- the queue record published for the case (`Case`, with its window of messages),
- the customer's threading state (stage B),
- the time stages B and C take per message (the worker's own `thread` and `apply_message`,
  each message on the very state the previous one left), as the median over the 20 messages
  before that point.

    .venv/bin/python bench/bounded_state.py [--messages 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules import compile_sources
from schemas import AgentAction, InboundMessage
from streams.actions import apply_action
from streams.case_events import case_record
from streams.case_state import CaseState, state_dictionary
from streams.casework import apply_message
from streams.records import ResolvedMessage, ThreadedMessage
from streams.state_store import StateCodec
from streams.threader import CustomerState, thread

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rules"
START = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
POINTS = (20, 100, 500, 1_000, 2_000)


def main() -> None:
    """Grow one case to `--messages` messages and print what it costs at each point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2_000)
    args = parser.parse_args()
    ruleset = compile_sources(
        {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml") if p.name != "tests.yaml"}
    )
    codec = StateCodec(state_dictionary())
    customer: CustomerState | None = None
    case: CaseState | None = None
    timings: list[float] = []
    threading: list[float] = []
    rows: list[tuple[int, int, int, int, int, float, float]] = []
    for number in range(1, args.messages + 1):
        at = START + timedelta(minutes=number)
        message = InboundMessage.model_validate(
            {
                "channel": "email",
                "external_id": f"m-{number:05d}",
                "sender": "ana@example.com",
                "subject": "Re: my order",
                "thread_ref": "order-1",
                "text": f"Message {number}: where is my order? I was charged twice.",
                "sent_at": at.isoformat(),
                "customer": {"id": "cus-1", "tier": "standard"},
            }
        )
        resolved = ResolvedMessage(
            customer_id="cus-1", message=message, ingested_at=at, identity_evidence="bench"
        )
        started = time.perf_counter()
        customer, threaded = thread(customer, resolved, now=at)
        threading.append(time.perf_counter() - started)
        assert isinstance(threaded, ThreadedMessage)
        started = time.perf_counter()
        case = apply_message(case, threaded, ruleset).state
        timings.append(time.perf_counter() - started)
        if number % 10 == 0:
            reply = AgentAction(
                action_id=f"reply-{number}",
                case_id=case.case_id,
                agent_id="agent-1",
                type="reply",
                at=at + timedelta(seconds=30),
                text="We are on it.",
            )
            update = apply_action(case, reply, ruleset)
            assert update is not None
            case = update.state
        if number in POINTS or number == args.messages:
            state_json = case.model_dump_json().encode()
            rows.append(
                (
                    number,
                    len(state_json),
                    len(codec.pack(state_json)),
                    len(case_record(case).model_dump_json()),
                    len(customer.model_dump_json()),
                    statistics.median(threading[-20:]) * 1e6,
                    statistics.median(timings[-20:]) * 1e6,
                )
            )
    print(f"one case, {args.messages:,} customer messages (an agent reply every tenth)")
    print(
        "| messages | case state JSON | held (zstd) | queue record | customer state "
        "| stage B µs | stage C µs |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for number, state, held, queue, customer_bytes, stage_b, stage_c in rows:
        print(
            f"| {number:,} | {state:,} B | {held:,} B | {queue:,} B | {customer_bytes:,} B "
            f"| {stage_b:.0f} | {stage_c:.0f} |"
        )


if __name__ == "__main__":
    main()
