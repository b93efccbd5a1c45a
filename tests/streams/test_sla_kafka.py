"""SLA clocks in the stream, against the real broker, with targets of seconds.

Times are checked in event time (each event carries the instant it is for), so the
assertions are exact however busy the machine is; only the waiting uses wall time.
"""

from __future__ import annotations

import os
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from schemas import Case, CaseEvent, Topics
from tests.kafka_support import Record, consume_until
from tests.stack_support import Stack, escalator_stack
from tests.streams.test_pipeline_kafka import message

RULES_TEMPLATE = Path(__file__).with_name("sla_rules.yaml")


def rules_file(directory: Path, first_response: str = "4s") -> str:
    """The test rules with a first-response target of `first_response`, written to a file."""
    path = directory / "sla_rules.yaml"
    text = string.Template(RULES_TEMPLATE.read_text()).substitute(first_response=first_response)
    path.write_text(text)
    return str(path)


def events(records: Sequence[Record]) -> list[CaseEvent]:
    unique: dict[str, CaseEvent] = {}
    for record in records:
        event = CaseEvent.model_validate_json(record.value or b"")
        unique.setdefault(event.event_id, event)
    return sorted(unique.values(), key=lambda e: e.at)


def wait_for_events(
    bootstrap: str, topics: Topics, done: Callable[[list[CaseEvent]], bool], timeout: float = 60
) -> list[CaseEvent]:
    records = consume_until(
        bootstrap, topics.case_events, lambda rs: done(events(rs)), timeout=timeout
    )
    return events(records)


def all_events(bootstrap: str, topics: Topics, seconds: float = 8) -> list[CaseEvent]:
    """Everything on the events topic now (reads for `seconds`, whatever comes)."""
    records = consume_until(
        bootstrap, topics.case_events, 10**9, timeout=seconds, raise_on_timeout=False
    )
    return events(records)


def of(found: list[CaseEvent], kind: str, clock: str | None = None) -> list[CaseEvent]:
    return [
        e for e in found if e.type == kind and (clock is None or e.payload.get("clock") == clock)
    ]


def act(stack: Stack, case_id: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "escalator", "cases", "act", case_id, *args],
        env={**os.environ, **stack.env},
        check=True,
        capture_output=True,
        timeout=60,
    )


def open_case(stack: Stack, bootstrap: str, topics: Topics) -> Case:
    answer = httpx.post(f"{stack.ingress_url}/v1/messages", json=message("sla-1"), timeout=30)
    assert answer.status_code == 202
    [routed] = consume_until(bootstrap, topics.queue("general"), 1, timeout=60)
    return Case.model_validate_json(routed.value or b"")


def test_warning_notifies_breach_escalates_and_unclaimed_step_repeats(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(
        kafka_bootstrap, topic_prefix, tmp_path, ESCALATOR_RULES=rules_file(tmp_path)
    ) as stack:
        stack.start_worker()
        stack.start_ingress()
        case = open_case(stack, kafka_bootstrap, topics)
        found = wait_for_events(
            kafka_bootstrap,
            topics,
            lambda es: (
                len(
                    [
                        e
                        for e in of(es, "case.escalated")
                        if e.payload["escalation"]["on"] == "unclaimed"
                    ]
                )
                >= 3
                and bool(of(es, "sla.breached", "first_response"))
            ),
        )
        time.sleep(4)  # a fourth unclaimed firing would come 3 s after the third
        found = all_events(kafka_bootstrap, topics)
        [started] = of(found, "sla.started", "first_response")
        [warning] = of(found, "sla.warning", "first_response")
        [breach] = of(found, "sla.breached", "first_response")
        assert warning.at - started.at == timedelta(seconds=2)  # warn_at 50% of 4 s
        assert breach.at - started.at == timedelta(seconds=4)
        assert "fast" in breach.reason and "4s" in breach.reason
        steps = [e.payload["escalation"] for e in of(found, "case.escalated")]
        assert {"on": "warning", "notify": ["team-leads"]}.items() <= {
            k: v for k, v in steps[0].items() if k in ("on", "notify")
        }.items()
        unclaimed = [s for s in steps if s["on"] == "unclaimed"]
        assert [s["firing"] for s in unclaimed] == [0, 1, 2]
        assert all(s["notify"] == ["duty-manager"] for s in unclaimed)
        moved = [s for s in steps if s["on"] == "breach"]
        assert moved and moved[0]["queue"] == "tier2" and moved[0]["priority"] == "high"
        [escalated] = consume_until(kafka_bootstrap, topics.queue("tier2"), 1, timeout=30)
        routed = Case.model_validate_json(escalated.value or b"")
        assert (routed.case_id, routed.queue, routed.priority.value) == (
            case.case_id,
            "tier2",
            "high",
        )
        assert "breached" in routed.tags
        assert routed.sla["first_response"].state.value == "breached"


def test_claim_stops_unclaimed_steps_and_pause_delays_breach_exactly(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(
        kafka_bootstrap,
        topic_prefix,
        tmp_path,
        ESCALATOR_RULES=rules_file(tmp_path, first_response="12s"),
    ) as stack:
        stack.start_worker()
        stack.start_ingress()
        case = open_case(stack, kafka_bootstrap, topics)
        act(stack, case.case_id, "claim", "--agent", "sam")
        act(stack, case.case_id, "status", "--status", "waiting_on_customer", "--agent", "sam")
        time.sleep(2)
        act(stack, case.case_id, "status", "--status", "open", "--agent", "sam")
        found = wait_for_events(
            kafka_bootstrap, topics, lambda es: bool(of(es, "sla.breached", "first_response"))
        )
        [started] = of(found, "sla.started", "first_response")
        [paused] = of(found, "sla.paused", "first_response")
        [resumed] = of(found, "sla.resumed", "first_response")
        [breach] = of(found, "sla.breached", "first_response")
        assert resumed.at > paused.at
        assert breach.at - started.at == timedelta(seconds=12) + (resumed.at - paused.at)
        [claimed] = of(found, "case.claimed")
        assert "sam" in claimed.reason
        unclaimed = [
            e for e in of(found, "case.escalated") if e.payload["escalation"]["on"] == "unclaimed"
        ]
        assert all(e.at <= claimed.at for e in unclaimed)  # none after the claim


def test_worker_killed_mid_clock_fires_the_breach_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    with escalator_stack(
        kafka_bootstrap, topic_prefix, tmp_path, ESCALATOR_RULES=rules_file(tmp_path)
    ) as stack:
        worker = stack.start_worker()
        stack.start_ingress()
        open_case(stack, kafka_bootstrap, topics)
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        stack.start_worker()
        ready_at = datetime.now(UTC)  # the new worker owns the partitions from about here
        records = consume_until(
            kafka_bootstrap,
            topics.case_events,
            lambda rs: bool(of(events(rs), "sla.breached", "first_response")),
            timeout=90,
        )
        time.sleep(2)
        records = consume_until(kafka_bootstrap, topics.case_events, len(records), timeout=10)
    found = events(records)
    [started] = of(found, "sla.started", "first_response")
    [breach] = of(found, "sla.breached", "first_response")
    assert breach.at - started.at == timedelta(seconds=4)  # stamped with its deadline
    assert breach.at < ready_at  # it fell due while no worker ran, and still fired
    bodies: dict[str, str] = {}
    for record in records:  # every repeat of an event id is byte-identical
        event = CaseEvent.model_validate_json(record.value or b"")
        assert bodies.setdefault(event.event_id, record.value.decode()) == record.value.decode()  # type: ignore[union-attr]
