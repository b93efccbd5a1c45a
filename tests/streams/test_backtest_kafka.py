"""`rules backtest` on history recorded in the real Kafka by the real worker.

The worker routes four customers' messages under rules with first-response targets of
seconds; an agent answers one case. The backtest then reads `messages.inbound` and
`agent.actions` back from Kafka and replays them. Replayed under the worker's own rules,
every case ends where the worker put it, with the same warnings, breaches, met clocks and
escalation steps at the same instants (event time, so however busy the machine is); under
a candidate with a one-hour target the breaches the worker wrote are reported as lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from escalator.rules_backtest import from_records
from kafkaio.time_range import read_range
from rules import compile_sources
from schemas import Case, CaseEvent, Topics
from streams.backtest import TRACKED, CaseOutcome, _note_clock_event, in_order, replay
from tests.kafka_support import consume_until, produce_json
from tests.stack_support import escalator_stack
from tests.streams.test_sla_kafka import act

RULES = """\
version: 1
calendars:
  always: 24x7
sla:
  fast:
    calendar: always
    targets:
      normal: {first_response: FIRST, resolution: 300s}
    warn_at: 50%
escalations:
  fast:
    - {on: warning, notify: [team-leads]}
    - {on: breach, clock: first_response, queue: tier2, priority: +1, tags: [breached]}
queues:
  general: {}
  billing: {}
  tier2: {}
routes:
  queue: general
  priority: normal
  sla: fast
  escalation: fast
  routes:
    - name: billing
      when: {text: {any: [refund, invoice]}}
      queue: billing
"""

TEXTS = ["please refund me", "where is my order?", "my invoice is wrong", "hello?"]


def _rules(folder: Path, first_response: str) -> Path:
    folder.mkdir()
    (folder / "rules.yaml").write_text(RULES.replace("FIRST", first_response))
    return folder


def _worker_outcomes(events: list[CaseEvent]) -> dict[str, CaseOutcome]:
    """What the worker wrote, kept as a backtest keeps a replay's."""
    outcomes: dict[str, CaseOutcome] = {}
    seen: set[str] = set()
    for event in sorted(events, key=lambda e: e.at):
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        outcome = outcomes.setdefault(event.case_id, CaseOutcome(event.case_id))
        if event.type in TRACKED:
            _note_clock_event(outcome, event)
        case = event.payload.get("case")
        if isinstance(case, dict):
            outcome.queue = Case.model_validate(case).queue
    return outcomes


def test_a_replay_of_kafka_history_matches_the_worker_and_compares_a_candidate(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    baseline = _rules(tmp_path / "baseline", "20s")
    candidate = _rules(tmp_path / "candidate", "1h")
    with escalator_stack(
        kafka_bootstrap, topic_prefix, tmp_path, ESCALATOR_RULES=str(baseline / "rules.yaml")
    ) as stack:
        stack.start_worker()
        now = datetime.now(UTC).isoformat()
        messages = [
            {
                "channel": "email",
                "external_id": f"bt-{n}",
                "sender": f"customer{n}@example.com",
                "text": text,
                "sent_at": now,
            }
            for n, text in enumerate(TEXTS)
        ]
        produce_json(kafka_bootstrap, topics.inbound, messages, key=lambda m: m["sender"])
        routed = consume_until(
            kafka_bootstrap, [topics.queue("general"), topics.queue("billing")], 4, timeout=90
        )
        answered = Case.model_validate_json(
            next(r.value for r in routed if r.topic == topics.queue("general")) or b""
        ).case_id
        act(stack, answered, "claim", "--agent", "ana")
        act(stack, answered, "reply", "--agent", "ana", "--text", "On it")

        def breached_three(records: Any) -> bool:
            kinds = [json.loads(r.value)["type"] for r in records if r.value]
            return kinds.count("sla.breached") >= 3 and "sla.met" in kinds

        consume_until(kafka_bootstrap, topics.case_events, breached_three, timeout=120)
        time.sleep(2)  # nothing else falls due before the 300 s resolution target
        until = datetime.now(UTC)
        written = [
            CaseEvent.model_validate_json(r.value or b"")
            for r in consume_until(
                kafka_bootstrap, topics.case_events, 10**9, timeout=8, raise_on_timeout=False
            )
        ]

        records = read_range(
            {"bootstrap.servers": kafka_bootstrap},
            [topics.inbound, topics.agent_actions],
            None,
            until,
        )
        history = from_records(records, topics.inbound)
        assert len(history.items) == 6
        ruleset = compile_sources({"rules.yaml": (baseline / "rules.yaml").read_text()})
        replayed = replay(in_order(history.items), ruleset, until)
        worker = _worker_outcomes(written)
        assert set(replayed.outcomes) == set(worker)
        for case_id, outcome in replayed.outcomes.items():
            assert outcome.clock_events == worker[case_id].clock_events, case_id
            assert outcome.queue == worker[case_id].queue, case_id
        assert replayed.outcomes[answered].first_response == "met"

        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "escalator",
                "rules",
                "backtest",
                str(candidate),
                "--baseline",
                str(baseline),
                "--to",
                until.isoformat(),
                "--json",
            ],
            env={**os.environ, **stack.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["cases"] == 4
        assert report["history"]["messages"] == 4 and report["history"]["actions"] == 2
        assert report["breaches"] == {
            "before": 3,
            "after": 0,
            "by_queue": {
                "billing": {"before": 2, "after": 0},
                "general": {"before": 1, "after": 0},
            },
        }
        lost = [
            c
            for c in report["changed"]
            if c["field"] == "sla.breached first_response" and c["after"] is None
        ]
        assert {c["case_id"] for c in lost} == set(worker) - {answered}
        breach_at = {
            e.case_id: e.at.strftime("%Y-%m-%dT%H:%M:%SZ")
            for e in written
            if e.type == "sla.breached"
        }
        assert {c["case_id"]: c["before"] for c in lost} == breach_at
        assert report["first_response"]["before"]["breached"] == 3
        assert report["first_response"]["after"] == {"met": 1, "breached": 0, "attainment": 1.0}
