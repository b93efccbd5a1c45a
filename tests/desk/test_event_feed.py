"""The desk's event streams share one store poller per process, and none misses an event."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from queues import EventApplier, SourceRecord, make_engine, make_session_factory
from queues.desk.reads import ChangedEvent, DeskReads
from schemas import CaseEvent
from tests.desk.conftest import DeskWorld
from tests.queues.case_event_builders import conversation, to_bytes
from tests.security.desk_support import desk_app, served, sqlite_world

STREAMS = 10


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DeskWorld]:
    with sqlite_world(tmp_path) as desk_world:
        desk_world.add("ana", "general")
        yield desk_world


@pytest.fixture
def store_reads(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """Every read of the store's changes, as the set of case ids it returned."""
    reads: list[set[str]] = []
    lock = threading.Lock()
    original = DeskReads.changes_after

    def counted(self: DeskReads, cursor: Mapping[int, int], limit: int = 500) -> list[ChangedEvent]:
        changed = original(self, cursor, limit)
        with lock:
            reads.append({event.case_id for event in changed})
        return changed

    monkeypatch.setattr(DeskReads, "changes_after", counted)
    return reads


def project(world: DeskWorld, events: Sequence[CaseEvent], first_offset: int) -> None:
    """Write events into the store as the projection would, at offsets from `first_offset`."""
    engine = make_engine(world.database_url)
    with make_session_factory(engine).begin() as session:
        EventApplier().apply_batch(
            session,
            [
                SourceRecord(to_bytes(event), partition=0, offset=first_offset + number)
                for number, event in enumerate(events)
            ],
        )
    engine.dispose()


async def follow(
    http: httpx.AsyncClient, headers: dict[str, str], seen: list[dict[str, str]]
) -> None:
    """Read one event stream, appending each event's data (and `connected`) to `seen`."""
    async with http.stream("GET", "/v1/events", headers=headers) as answer:
        assert answer.status_code == 200
        async for line in answer.aiter_lines():
            if line == ": connected":
                seen.append({"connected": "yes"})
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))


async def until(condition: object, what: str) -> None:
    """Wait (generously) for `condition()` to hold."""
    for _ in range(600):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cases_seen(seen: list[dict[str, str]]) -> set[str]:
    return {event["case_id"] for event in seen if "case_id" in event}


async def test_many_streams_are_fed_by_one_store_poller(
    world: DeskWorld, store_reads: list[set[str]]
) -> None:
    first, second = conversation("early"), conversation("later")
    with served(desk_app(world, events_poll_seconds=0.05)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=None) as http:
            streams = [[] for _ in range(STREAMS)]  # type: list[list[dict[str, str]]]
            tasks = [asyncio.create_task(follow(http, world.auth("ana"), s)) for s in streams]
            try:
                await until(lambda: all(s for s in streams), "every stream to connect")
                project(world, first, 0)
                early = first[0].case_id
                await until(lambda: all(early in cases_seen(s) for s in streams), "the 1st case")
                settled = len(store_reads)
                await until(lambda: len(store_reads) >= settled + 3, "a few more polls")

                project(world, second, len(first))
                later = second[0].case_id
                await until(lambda: all(later in cases_seen(s) for s in streams), "the 2nd case")
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    reads_returning_it = [found for found in store_reads if later in found]
    assert len(reads_returning_it) == 1, f"{len(reads_returning_it)} reads for {STREAMS} streams"
    for seen in streams:  # each stream got every event of the case, once and in order
        types = [event["type"] for event in seen if event.get("case_id") == later]
        assert types == [event.type for event in second]


async def test_a_stream_resumed_from_its_last_event_id_gets_what_it_missed(
    world: DeskWorld,
) -> None:
    events = conversation("missed", messages=3)
    project(world, events, 0)
    with served(desk_app(world, events_poll_seconds=0.05)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=None) as http:
            seen: list[dict[str, str]] = []
            headers = {**world.auth("ana"), "Last-Event-ID": "0:2"}
            task = asyncio.create_task(follow(http, headers, seen))
            try:
                await until(lambda: len(seen) >= len(events) - 2, "the missed events")
                more = conversation("afterwards")
                project(world, more, len(events))
                await until(lambda: more[0].case_id in cases_seen(seen), "the live events")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    missed = [event["type"] for event in seen if event.get("case_id") == events[0].case_id]
    assert missed == [event.type for event in events[3:]]
