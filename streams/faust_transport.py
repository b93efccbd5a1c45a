"""faust's aiokafka transport, with the worker's consumer reading committed records only and
a configurable fetch wait (faust hard-codes 1,500 ms).

Read committed: stage C writes its outputs (events, queue records, messages moved to another
case on `messages.threaded`) in one transaction with the case states they came from (see
`ChangelogState.save`). A transaction that a crash left open is aborted by the partition's
next owner; a consumer reading uncommitted records would process its moved messages anyway.
faust reads committed records only when it runs its own transactions, which the worker does
not use, so the isolation is set here.

Fetch wait: a consumer's fetch request waits up to `fetch.max.wait.ms` for data. Apache
Kafka answers as soon as records arrive, so the wait costs nothing there; the embedded Tansu
broker of `escalator demo` holds every fetch for its whole wait, so each of the worker's
three hops waited 1.5 s. `escalator demo` sets a short wait
(`ESCALATOR_FAUST_FETCH_MAX_WAIT_MS`).

Offsets for the stall check: `consumer_offsets` reads, without waiting, what the consumer
knows of each partition it holds (see `streams.progress`).

Handing records to the streams: faust's consumer passes each record to the streams with
`wait_first(callback(record), suspend_flow.wait())`, which makes four tasks and an
`asyncio.wait` per record and hop, about a tenth of the worker's CPU. Nearly every hand-over
finishes without ever waiting (the stream's buffer has room), so the worker's consumer first
runs the hand-over directly, and only one that has to wait goes on under `wait_first`, from
where it stopped (`FirstStepWait`): a rebalance that suspends the flow still abandons it.

What was fetched, for the SLA timer: `fetched_offsets` tells, per partition, the fetch
position and the last record fetched since the assignment (see `streams.event_time`). The
consumer runs in a thread of its own, where a fetch moves the position past the records it
drains and hands them on. The two are noted together right there, after each fetch, so the
timer never sees a position past records that are not yet counted as fetched. A position
moved past transaction markers alone (no record) is noted when the fetch returns, at most
one fetch timeout (1 s) later.

Heartbeats during the assignment: aiokafka stops its heartbeats for the join and starts them
again only when the rebalance handler has returned, so a handler longer than the session
timeout (10 s) got the worker evicted, and the group rebalanced again as soon as it was done
(the worker once restored the partitions it was assigned inside the handler: seconds per
100,000 cases). The worker's consumer starts them as soon as its assignment is known
(`HeartbeatingListener`), as the Java client's heartbeat thread keeps beating through its
callbacks; aiokafka already beats through the revocation handler.

Partitions held back: the partitions a rebalance moves to the worker are restored after the
handler (`streams.rebalance.MovedRestore`), and their records must wait for that state while
the partitions the worker kept go on. faust pauses every partition for a rebalance and
resumes them all when its own recovery is over; the worker's consumer keeps the ones it
holds back paused through that (`hold_back`) until their restore is done (`let_go`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults

from streams.event_time import Fetched
from streams.progress import PartitionOffsets, TopicPartition

__all__ = [
    "FirstStepWait",
    "HeartbeatingListener",
    "ResumedCoroutine",
    "consumer_offsets",
    "fetched_offsets",
    "use_worker_consumer",
]


class ResumedCoroutine:
    """The rest of a coroutine that already ran up to its first wait, as an awaitable.

    Awaiting it (or wrapping it in a task) goes on where the coroutine stopped: what it
    waits for is waited for, a cancellation or an exception reaches it, and its result is
    the awaited value.
    """

    __slots__ = ("_coro", "_waiting_for")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting_for: Any) -> None:
        self._coro = coro
        self._waiting_for = waiting_for

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting_for = self._coro, self._waiting_for
        while True:
            try:
                sent = yield waiting_for
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation or error thrown in: pass it on
                try:
                    waiting_for = coro.throw(exc)
                except StopIteration as finished:
                    return finished.value
            else:
                try:
                    waiting_for = coro.send(sent)
                except StopIteration as finished:
                    return finished.value


def _is_event_wait(awaitable: object) -> bool:
    return getattr(awaitable, "__qualname__", None) == "Event.wait"


class FirstStepWait:
    """A mode `Service` mixin: `wait_first(coro, event.wait())` runs `coro` directly first.

    When the coroutine finishes without waiting and neither the service's flow nor the
    service itself is stopping, that is the result, with no task made. Otherwise it goes on
    under mode's own `wait_first`, from where it stopped, so whichever comes first still
    wins. Every other call is mode's unchanged.
    """

    suspend_flow: asyncio.Event
    _stopped: asyncio.Event
    _crashed: asyncio.Event

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        """mode's `Service.wait_first`, with the direct first step for a hand-over."""
        general = super().wait_first  # type: ignore[misc]
        if (
            len(coros) != 2
            or timeout is not None
            or not asyncio.iscoroutine(coros[0])
            or not _is_event_wait(coros[1])
            or self.suspend_flow.is_set()
            or self._stopped.is_set()
            or self._crashed.is_set()
        ):
            return cast(WaitResults, await general(*coros, timeout=timeout))
        first, other = coros
        try:
            waiting_for = first.send(None)
        except StopIteration as finished:
            other.close()  # never started: nothing to wait for
            return WaitResults([first], [finished.value], False)
        except BaseException:
            other.close()
            raise
        resumed = ResumedCoroutine(first, waiting_for)
        return cast(WaitResults, await general(resumed, other))


@dataclass(frozen=True)
class _FetchNote:
    """The consumer's positions and last records fetched, as its latest fetch left them."""

    assignment: object
    """The aiokafka assignment they belong to (a rebalance makes a new one)."""
    positions: Mapping[TopicPartition, int]
    """The fetch position of each partition that has one."""
    last_records: Mapping[TopicPartition, int]
    """The offset of the last record fetched on each partition since the assignment."""


def _note_fetch(previous: _FetchNote | None, consumer: Any, records: Any) -> _FetchNote | None:
    """The note after a fetch drained `records` (run in the consumer's thread, at once)."""
    subscription = consumer._subscription.subscription
    assignment: Any = subscription.assignment if subscription is not None else None
    if assignment is None:
        return None
    last: dict[TopicPartition, int] = {}
    if previous is not None and previous.assignment is assignment:
        last.update(previous.last_records)
    for tp, batch in records.items():
        if batch:  # each partition's records come in offset order
            key = (tp.topic, tp.partition)
            last[key] = max(last.get(key, -1), batch[-1].offset)
    positions: dict[TopicPartition, int] = {}
    for tp in assignment.tps:
        state = assignment.state_value(tp)
        if state is not None and state.has_valid_position:
            positions[tp.topic, tp.partition] = state.position
    return _FetchNote(assignment, positions, last)


class HeartbeatingListener(faust_aiokafka.ConsumerRebalanceListener):
    """faust's rebalance listener, with the group's heartbeats going on through the handler.

    Runs on the consumer's thread, where aiokafka's group coordinator lives. The join is
    complete when the assignment arrives (generation and member id set), so a heartbeat
    now is one of that generation: the coordinator keeps the member while the handler
    restores, and a heartbeat that learns of a new rebalance asks for the rejoin that
    follows the handler, as aiokafka does for the revocation handler.
    """

    async def on_partitions_assigned(self, assigned: Any) -> None:
        """Start the heartbeats, then hand the assignment to faust (and the worker)."""
        coordinator = self._thread._ensure_consumer()._coordinator
        coordinator._start_heartbeat_task()  # a no-op when they already run
        await super().on_partitions_assigned(assigned)


def use_worker_consumer(
    app: faust.App,
    fetch_max_wait_ms: int | None = None,
    held_back_topics: Iterable[str] = (),
) -> None:
    """Make the worker's consumer read committed records only, heartbeat through its
    assignment handler, wait at most this long per fetch when given, and hold back the
    partitions of `held_back_topics` on each assignment until the worker lets them go
    (call before anything creates the transport)."""
    held_back_topics = frozenset(held_back_topics)

    class WorkerConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        fetch_note: _FetchNote | None = None

        async def _fetch_records(
            self,
            consumer: Any,
            active_partitions: Any,
            timeout: float | None = None,
            max_records: int | None = None,
        ) -> Any:
            records = await super()._fetch_records(
                consumer, active_partitions, timeout=timeout, max_records=max_records
            )
            # no await since the fetch drained them: positions and records noted as one
            self.fetch_note = _note_fetch(self.fetch_note, consumer, records)
            return records

        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # both read by AIOKafkaConsumer.start() when it builds its fetcher
            consumer._isolation_level = "read_committed"
            if fetch_max_wait_ms is not None:
                consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class WorkerConsumer(FirstStepWait, faust_aiokafka.Consumer):  # type: ignore[misc]
        RebalanceListener = HeartbeatingListener
        held_back: set[Any]
        """Assigned partitions not fetched until their state is restored (`hold_back`)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.held_back = set()

        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return WorkerConsumerThread(self, loop=self.loop, beacon=self.beacon)

        async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
            """Hold back every assigned partition of the stateful topics before anything
            fetches it: the worker's handler lets go of the ones whose state it kept, and
            of the moved ones once restored. faust resumes streams while that handler runs,
            so holding them back from the handler would be too late: a moved partition's
            records already fetched would hold up a batch of the kept ones."""
            held = {tp for tp in assigned if tp.topic in held_back_topics}
            self.held_back = held
            self._paused_partitions |= held  # faust keeps assigned partitions paused
            await super().on_partitions_assigned(assigned, generation_id)

        def hold_back(self, tps: Iterable[Any]) -> None:
            """Fetch nothing of these assigned partitions until `let_go`, whoever resumes.

            faust pauses every partition for a rebalance and resumes them all once it is
            over (its recovery's `_resume_streams`), whatever the worker still restores.
            """
            tps = set(tps)
            self.held_back |= tps
            self.pause_partitions(tps)

        def let_go(self, tps: Iterable[Any]) -> None:
            """Fetch these partitions again (their state is restored)."""
            tps = set(tps) & self.held_back
            self.held_back -= tps
            super().resume_partitions(tps & self.assignment())

        def resume_partitions(self, tps: Iterable[Any]) -> None:
            """Resume fetching, except the partitions held back."""
            super().resume_partitions(set(tps) - self.held_back)

        async def on_partitions_revoked(self, revoked: set[Any]) -> None:
            """A revoked partition is held back no more (its next owner restores it)."""
            self.held_back -= set(revoked)
            await super().on_partitions_revoked(revoked)

    class WorkerTransport(faust_aiokafka.Transport):
        Consumer = WorkerConsumer

    app.transport = WorkerTransport(app.conf.broker_consumer, app)


def consumer_offsets(app: faust.App) -> dict[TopicPartition, PartitionOffsets]:
    """The high watermark, fetch position and last delivered offset of each partition the
    worker's consumer holds, as its last fetches left them (never waits on the broker).

    Raises while the consumer is not started.
    """
    consumer = cast(faust_aiokafka.Consumer, app.consumer)  # use_worker_consumer's
    # faust's aiokafka driver keeps the aiokafka consumer on its consumer thread
    subscription = consumer._thread._ensure_consumer()._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    delivered = consumer._read_offset  # a defaultdict: `get` adds nothing
    found: dict[TopicPartition, PartitionOffsets] = {}
    for tp in consumer.assignment():
        state = assignment.state_value(tp) if assignment is not None else None
        position = state.position if state is not None and state.has_valid_position else None
        found[tp.topic, tp.partition] = PartitionOffsets(
            consumer.highwater(tp), position, delivered.get(tp)
        )
    return found


def fetched_offsets(app: faust.App, topic: str, partition: int) -> Fetched | None:
    """What the worker's consumer has fetched of a partition it holds: its fetch position
    and the last record fetched since the assignment (None: not known, e.g. no fetch since
    the latest rebalance). Never waits on the broker or the consumer's thread."""
    try:
        thread = cast(faust_aiokafka.Consumer, app.consumer)._thread
        note: _FetchNote | None = getattr(thread, "fetch_note", None)
        subscription = thread._ensure_consumer()._subscription.subscription
    except Exception:  # the consumer is not started (or stopped)
        return None
    if note is None or subscription is None or note.assignment is not subscription.assignment:
        return None
    position = note.positions.get((topic, partition))
    if position is None:
        return None
    return Fetched(position, note.last_records.get((topic, partition)))
