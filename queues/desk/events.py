"""Server-sent events: the case changes of a queue or an agent, as the store records them.

The stream follows the store, not the topic, so an event a client receives is already
readable through the API. Its position is the last projected offset of each partition
of `cases.events` (offsets grow within a partition, and the projection commits them in
order), sent as the SSE `id`; a reconnecting EventSource sends it back in
`Last-Event-ID` and misses nothing. Every stream of a process is fed by one store poller
(`queues.desk.feed`), not a poller of its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from queues.desk import authz
from queues.desk.auth import CurrentAgent
from queues.desk.context import DeskContext, desk
from queues.desk.directory import Agent
from queues.desk.reads import ChangedEvent

router = APIRouter(prefix="/v1", tags=["events"])


def encode_cursor(cursor: dict[int, int]) -> str:
    """`0:12,1:7`: the last offset seen per partition."""
    return ",".join(f"{p}:{o}" for p, o in sorted(cursor.items()))


def decode_cursor(text: str) -> dict[int, int]:
    """The inverse of `encode_cursor`; ValueError on anything else."""
    cursor: dict[int, int] = {}
    for part in filter(None, text.split(",")):
        partition, _, offset = part.partition(":")
        cursor[int(partition)] = int(offset)
    return cursor


class _Followed:
    """Which cases a stream follows: those that match its filter, and those that just left it.

    A case moved to another queue (or given to another agent) no longer matches, but the
    subscriber must hear that it left, so the stream remembers the cases it has seen match.
    """

    def __init__(
        self, agent: Agent, queue: str | None, owner: str | None, matching: set[str]
    ) -> None:
        self._agent, self._queue, self._owner = agent, queue, owner
        self._matching = matching

    def _matches(self, event: ChangedEvent) -> bool:
        if self._queue is not None:
            return event.queue == self._queue
        if self._owner is not None:
            return event.assignee == self._owner
        return self._agent.sees(event.queue) or event.assignee == self._agent.name

    def wanted(self, event: ChangedEvent) -> bool:
        """Whether to send the event (and note whether its case still matches)."""
        if self._matches(event):
            self._matching.add(event.case_id)
            return True
        if event.case_id in self._matching:
            self._matching.discard(event.case_id)
            return True
        return False


@router.get(
    "/events",
    summary="Server-sent events: case changes of a queue or an agent",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    agent: CurrentAgent,
    context: Annotated[DeskContext, Depends(desk)],
    queue: Annotated[str | None, Query(description="Only this queue's cases.")] = None,
    for_agent: Annotated[
        str | None, Query(alias="agent", description="Only cases this agent owns (`me`).")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Each event is `event: case` with the event's id, case, type, reason, queue and owner."""
    owner = agent.name if for_agent == "me" else for_agent
    authz.may_follow(agent, queue, owner)
    try:
        cursor = decode_cursor(last_event_id) if last_event_id else None
    except ValueError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "malformed Last-Event-ID") from error
    if cursor is None:
        cursor = await asyncio.to_thread(context.reads.end_cursor)

    matching = await asyncio.to_thread(_matching_now, context, queue, owner)
    followed = _Followed(agent, queue, owner, matching)

    feed = context.feed

    async def stream() -> AsyncIterator[str]:
        # the process's one store poller hands this stream its batches (queues.desk.feed)
        subscription = feed.subscribe(agent.name, cursor)
        try:
            yield f"retry: 2000\nid: {encode_cursor(subscription.position)}\n: connected\n\n"
            # an open stream is a heartbeat: the agent's console or client is there
            await asyncio.to_thread(context.directory.heartbeat, agent.name)
            while True:
                if subscription.behind:
                    async for event in feed.catch_up(subscription):
                        if followed.wanted(event):
                            yield _frame(subscription.position, event)
                    continue
                batch = await subscription.next_batch(context.events_keepalive_seconds)
                if batch is None:
                    yield ": keep-alive\n\n"
                    continue
                for event in batch:
                    if subscription.advance(event) and followed.wanted(event):
                        yield _frame(subscription.position, event)
        finally:
            feed.unsubscribe(subscription)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _frame(position: dict[int, int], event: ChangedEvent) -> str:
    """One SSE event: the stream's position after it as the id, the change as the data."""
    data = json.dumps(event.to_json())
    return f"id: {encode_cursor(position)}\nevent: case\ndata: {data}\n\n"


def _matching_now(context: DeskContext, queue: str | None, owner: str | None) -> set[str]:
    """Ids of the unresolved cases the filter matches when the stream starts."""
    if queue is not None:
        return context.reads.case_ids(queue=queue)
    if owner is not None:
        return {case.case_id for case in context.reads.owned(owner)}
    return set()
