"""What the worker keeps and writes per case and per customer stays bounded.

A case with 1,000 messages, or 20 messages of 100,000 characters, and a customer with 1,000
messages whose ids are 1 KB each: every record the stages write (state, events, queue
records) stays under the record limit, and the case still routes. A record stamped in the
future does not wipe a customer's duplicate memory.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from schemas import Case, InboundMessage
from streams.case_state import MESSAGE_KEYS_KEPT, CaseState
from streams.output import MAX_RECORD_BYTES
from streams.records import ResolvedMessage, ThreadedMessage
from streams.threader import CustomerState, NotThreaded, thread
from tests.streams.test_poison import T0, TOPICS, Stages, event, inbound


def resolved(
    external_id: str, at_offset: timedelta = timedelta(0), **extra: object
) -> ResolvedMessage:
    return ResolvedMessage(
        customer_id="cus_1",
        message=inbound(external_id, **extra),  # type: ignore[arg-type]
        ingested_at=T0 + at_offset,
        identity_evidence="test",
    )


def test_a_record_stamped_in_the_future_keeps_the_customers_duplicate_memory() -> None:
    state: CustomerState | None = None
    for n in range(3):
        state, _ = thread(state, resolved(f"m-{n}", timedelta(minutes=n)), now=T0)
    state, _ = thread(state, resolved("future", timedelta(days=365)), now=T0)
    assert state is not None
    _, again = thread(state, resolved("m-0", timedelta(minutes=5)), now=T0)
    assert isinstance(again, NotThreaded) and again.reason == "duplicate"


def test_old_keys_are_forgotten_by_stream_time_within_wall_clock() -> None:
    state, _ = thread(None, resolved("old"), now=T0)
    later = timedelta(days=8)
    state, _ = thread(state, resolved("new", later), now=T0 + later)
    assert set(state.seen) == {"email:new"}


def test_a_customers_dedup_memory_is_bounded_with_long_ids() -> None:
    stages = Stages()
    batch = [
        event(
            TOPICS.resolved,
            b"cus_1",
            resolved(f"{n:04d}-" + "i" * 1_000, timedelta(seconds=n)).model_dump_json().encode(),
            n,
        )
        for n in range(1_000)
    ]
    for start in range(0, 1_000, 100):
        asyncio.run(stages.pipeline.threading_batch(batch[start : start + 100]))
    assert max(r.size for r in stages.publisher.records) < MAX_RECORD_BYTES
    assert not stages.on(TOPICS.dlq)
    state = stages.customers.load(0, b"cus_1", CustomerState)
    assert state is not None and "email:0999-" + "i" * 1_000 in state.seen
    threaded = stages.on(TOPICS.threaded)
    assert len(threaded) == 1_000
    cases = [event(TOPICS.threaded, r.key, r.value, n) for n, r in enumerate(threaded)]
    for start in range(0, 1_000, 100):
        asyncio.run(stages.pipeline.cases_batch(cases[start : start + 100]))
    assert max(r.size for r in stages.publisher.records) < MAX_RECORD_BYTES
    assert not stages.on(TOPICS.dlq)
    [*_, last] = [Case.model_validate_json(r.value) for r in stages.on(TOPICS.queue("general"))]
    assert last.messages[-1].external_id.startswith("0999-")


def run_case(stages: Stages, texts: list[str]) -> None:
    case = b"C-BIGCASE001"
    from tests.streams.test_poison import threaded_record

    for n, text in enumerate(texts):
        raw = threaded_record("C-BIGCASE001", f"big-{n}")
        raw = raw.replace(b'"text":"hello"', b'"text":"' + text.encode() + b'"')
        if n:
            raw = raw.replace(b'"opens_case":true', b'"opens_case":false')
        asyncio.run(stages.pipeline.cases_batch([event(TOPICS.threaded, case, raw, n)]))


def test_a_case_of_twenty_huge_messages_writes_nothing_over_the_limit() -> None:
    stages = Stages()
    run_case(stages, [f"{n:02d}" + "x" * 99_998 for n in range(20)])
    assert max(r.size for r in stages.publisher.records) < MAX_RECORD_BYTES
    assert not stages.on(TOPICS.dlq)
    [*_, last] = [Case.model_validate_json(r.value) for r in stages.on(TOPICS.queue("general"))]
    assert last.messages[-1].text.startswith("19")
    state = stages.cases.load(0, b"C-BIGCASE001", CaseState)
    assert state is not None and state.contacts == 20


def test_a_case_of_a_thousand_messages_stays_bounded_and_routes() -> None:
    stages = Stages()
    run_case(stages, [f"message {n}" for n in range(1_000)])
    assert max(r.size for r in stages.publisher.records) < 100_000
    [*_, last] = [Case.model_validate_json(r.value) for r in stages.on(TOPICS.queue("general"))]
    assert last.messages[-1].text == "message 999"
    state = stages.cases.load(0, b"C-BIGCASE001", CaseState)
    assert state is not None and state.contacts == 1_000
    assert len(state.message_keys) == MESSAGE_KEYS_KEPT


def test_a_case_of_hostile_messages_keeps_its_state_under_the_limit() -> None:
    """Control characters take six bytes each in JSON: ids and texts made of them."""
    stages = Stages()
    case = b"C-HOSTILE001"
    for n in range(150):
        control = "\x01" * 1_000
        threaded = ThreadedMessage(
            case_id="C-HOSTILE001",
            customer_id="cus-hostile",
            opens_case=n == 0,
            evidence="test",
            message=InboundMessage(
                channel="email",
                external_id=f"{control}{n:03d}",
                sender=control,
                text="\x01" * 100_000,
                subject="\x02" * 2_000,
                thread_ref=control,
                sent_at=T0,
            ),
            ingested_at=T0,
        )
        raw = threaded.model_dump_json().encode()
        asyncio.run(stages.pipeline.cases_batch([event(TOPICS.threaded, case, raw, n)]))
    changelog = [r for r in stages.publisher.records if r.topic == stages.cases.changelog_topic]
    assert max(r.size for r in changelog) < MAX_RECORD_BYTES
    assert not [r for r in stages.on(TOPICS.dlq) if b"changelog" in r.value]
    state = stages.cases.load(0, case, CaseState)
    assert state is not None and state.contacts == 150
    assert state.messages[-1].external_id.endswith("149")


def test_a_customer_with_hostile_ids_keeps_its_state_under_the_limit() -> None:
    stages = Stages()
    control = "\x01" * 1_000
    batch = [
        event(
            TOPICS.resolved,
            b"cus_1",
            resolved(f"{control}{n:04d}", timedelta(seconds=n), thread_ref=f"{control}{n:04d}")
            .model_dump_json()
            .encode(),
            n,
        )
        for n in range(400)
    ]
    for start in range(0, 400, 100):
        asyncio.run(stages.pipeline.threading_batch(batch[start : start + 100]))
    changelog = [r for r in stages.publisher.records if r.topic == stages.customers.changelog_topic]
    assert max(r.size for r in changelog) < MAX_RECORD_BYTES
    assert not stages.on(TOPICS.dlq)
    state = stages.customers.load(0, b"cus_1", CustomerState)
    assert state is not None and f"email:{control}0399" in state.seen
