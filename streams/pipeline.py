"""The worker's three stages and its SLA firing over one shared state: `Pipeline`.

- stage A `intake` (`streams.intake_stage`) consumes `messages.inbound` (keyed by sender):
  parse, dead-letter what does not parse, resolve the customer, re-key by customer to
  `messages.resolved`;
- stage B `threading` (`streams.threading_stage`, keyed by customer): deduplicate, decide
  the case, re-key by case to `messages.threaded`;
- stage C `cases` (`streams.cases_stage`, keyed by case id): append, evaluate rules, route,
  emit case events; the SLA timer (`streams.sla_firing`) fires the same cases' deadlines.

Each stage takes batches with `take_events`, which acknowledges a batch only after the
loop body returned. Stages A and B write their outputs with confluent-kafka and wait for
the broker's acknowledgement, then write the changed state to the stage's changelog the
same way (see `ChangelogState`), and only then return. Stage C reads two topics, so a
replay may interleave them differently from the first run: it writes each partition's
outputs in one transaction with the states they came from, and nothing downstream ever
reads an event of a state that was lost. A crash anywhere therefore replays input, never
skips it; deterministic ids make the replayed outputs harmless, and state already written
makes the replay a recognised duplicate. Records fetched before a rebalance are set aside
and fetched again (`streams.generations`). `streams.app` wires it to faust.
"""

from __future__ import annotations

from streams.cases_stage import CasesStage
from streams.intake_stage import IntakeStage
from streams.sla_firing import SlaFiring
from streams.threading_stage import ThreadingStage


class Pipeline(IntakeStage, ThreadingStage, CasesStage, SlaFiring):
    """The three stages' logic over their changelog state; `streams.app` wires it to topics."""
