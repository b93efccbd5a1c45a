"""What acknowledging a new case costs stage C: `apply_message` with and without templates.

The same rule set (a business-hours SLA, an escalation policy) with and without an
`acknowledgements:` section, on the same corpus of messages that each open a case; with
templates, every case renders its acknowledgement in the sandbox and signs its escalation
link. Prints microseconds per new case for both and their ratio, measured in the same run.

    .venv/bin/python bench/acknowledgements.py [--cases N]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules import CompiledRuleSet, compile_sources
from schemas import InboundMessage
from schemas.links import EscalationLinks
from streams.acknowledge import Acknowledger
from streams.casework import apply_message
from streams.records import ThreadedMessage

BASE = """
version: 1
calendars:
  eu: {timezone: Europe/Berlin, hours: {mon-fri: ["09:00-17:00"]}}
sla:
  std:
    calendar: eu
    targets:
      high: {first_response: 2h}
      normal: {first_response: 4h, next_response: 2h}
escalations:
  std:
    - {on: warning, clock: first_response, priority: +1}
queues: {general: {}}
routes: {queue: general, priority: normal, sla: std, escalation: std}
"""

TEMPLATES = """
acknowledgements:
  default:
    subject: "We received your message [#{{ case.reference }}]"
    text: |
      Hello, your case is {{ case.reference }}. You will hear from us by
      {{ promise.first_response }} ({{ sla.first_response.due_at }}).
      Still not solved by then? {{ links.escalate }}
    update:
      text: "Sooner: {{ promise.first_response }}"
"""

AT = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)


def corpus(count: int) -> list[ThreadedMessage]:
    """Messages that each open their own case."""
    return [
        ThreadedMessage(
            case_id=f"C-{index:010d}",
            customer_id=f"cus-{index}",
            opens_case=True,
            evidence="bench",
            message=InboundMessage(
                channel="email",
                external_id=f"<m{index}@bench>",
                sender=f"customer{index}@example.com",
                text="Where is my refund?",
                sent_at=AT,
            ),
            ingested_at=AT,
        )
        for index in range(count)
    ]


def per_case(ruleset: CompiledRuleSet, messages: list[ThreadedMessage]) -> float:
    """Microseconds per new case (best of three runs)."""
    acknowledger = Acknowledger(EscalationLinks("bench-secret", "https://help.example.com"))
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for message in messages:
            apply_message(None, message, ruleset, acknowledger=acknowledger)
        best = min(best, (time.perf_counter() - started) / len(messages) * 1e6)
    return best


def main() -> None:
    """Measure both and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=3000)
    args = parser.parse_args()
    messages = corpus(args.cases)
    without = per_case(compile_sources({"rules.yaml": BASE}), messages)
    with_templates = per_case(compile_sources({"rules.yaml": BASE + TEMPLATES}), messages)
    print(f"new case, stage C: {without:.0f} us without acknowledgements")
    print(f"new case, stage C: {with_templates:.0f} us with an acknowledgement rendered")
    print(f"ratio: {with_templates / without:.2f}x (+{with_templates - without:.0f} us per case)")


if __name__ == "__main__":
    main()
