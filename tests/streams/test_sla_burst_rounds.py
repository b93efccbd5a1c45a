"""A burst of deadlines hands the case lock to a waiting stage C batch between rounds.

Stage C and the SLA timer change cases under one lock. A burst of thousands of deadlines
takes seconds to fire; stage C's input must not wait for all of it. The timer fires in
rounds and, while a batch waits, ends its round (writes acknowledged, states saved)
and lets the batch go first. Fake clock, in-memory publisher.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest

from schemas import InboundMessage
from streams import sla_firing
from streams.records import ThreadedMessage
from tests.streams.test_sla_timer import T0, TOPICS, Worker

CASES = 40
DUE = T0 + timedelta(hours=1, seconds=1)  # every case's first unclaimed step is due


async def open_cases(worker: Worker) -> None:
    """`CASES` cases opened at T0, in one stage C batch."""
    batch = []
    for number in range(CASES):
        case_id = f"C-BURST{number:05d}"
        threaded = ThreadedMessage(
            case_id=case_id,
            customer_id=f"cus_{number}",
            opens_case=True,
            evidence="test",
            message=InboundMessage(
                channel="email",
                external_id=f"m-{number}",
                sender=f"c{number}@example.com",
                text="hi",
                sent_at=T0,
            ),
            ingested_at=T0,
        )
        message = SimpleNamespace(
            topic=TOPICS.threaded,
            key=case_id.encode(),
            partition=number % 4,
            offset=number,
            value=threaded.model_dump_json().encode(),
            timestamp=0.0,
        )
        batch.append(SimpleNamespace(message=message))
    await worker.pipeline.cases_batch(batch)


def escalated(worker: Worker) -> list[str]:
    """Case ids of the `case.escalated` events written so far, in order."""
    return [
        json.loads(r.value)["case_id"]
        for r in worker.publisher.records
        if r.topic == TOPICS.case_events and json.loads(r.value)["type"] == "case.escalated"
    ]


async def test_a_waiting_stage_c_batch_goes_between_two_rounds_of_a_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sla_firing, "FIRE_SLICE", 5)
    monkeypatch.setattr(sla_firing, "ROUND_SECONDS", 0.0)  # a round is one slice when waited on
    worker = Worker(prepare_seconds=0)
    await open_cases(worker)
    assert len(worker.deadlines) == CASES
    burst = asyncio.create_task(worker.pipeline.fire_due(DUE))
    await asyncio.sleep(0)  # the burst holds the lock and has computed its first slice
    assert worker.pipeline.case_lock.locked()

    seen_by_batch: list[int] = []

    async def stage_c_batch() -> None:
        async with worker.pipeline.case_lock:
            seen_by_batch.append(len(escalated(worker)))
            # what the timer fired so far is saved: those cases are timed again
            assert len(worker.deadlines) == CASES

    await stage_c_batch()
    await burst
    assert seen_by_batch == [5]  # one round, not the whole burst, went before the batch
    fired = escalated(worker)
    assert sorted(fired) == sorted(f"C-BURST{n:05d}" for n in range(CASES))  # each once


async def test_with_nobody_waiting_a_burst_fires_in_one_hold_of_the_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sla_firing, "FIRE_SLICE", 5)
    monkeypatch.setattr(sla_firing, "ROUND_SECONDS", 0.0)
    worker = Worker(prepare_seconds=0)
    await open_cases(worker)
    rounds = 0
    fire_round = worker.pipeline._fire_round

    async def counted(now):  # type: ignore[no-untyped-def]
        nonlocal rounds
        rounds += 1
        return await fire_round(now)

    monkeypatch.setattr(worker.pipeline, "_fire_round", counted)
    await worker.pipeline.fire_due(DUE)
    assert len(escalated(worker)) == CASES
    assert rounds == 2  # the burst, then one finding nothing more due
