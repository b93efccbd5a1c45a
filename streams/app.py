"""The faust app of the worker: its topics, agents, SLA timer task, rebalance hooks and pages.

The stages' logic is `streams.pipeline.Pipeline`; this module only wires it to faust.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import faust

from metricsio import render_metrics
from streams import metrics
from streams.clock import Clock, WallClock
from streams.deadlines import DeadlineIndex
from streams.event_time import EventTimeProgress
from streams.faust_transport import consumer_offsets, fetched_offsets, use_worker_consumer
from streams.identity import IdentityDirectory
from streams.output import Publisher, ReliableWriter
from streams.pipeline import Pipeline
from streams.readiness import readiness
from streams.rebalance import (
    Fetching,
    MovedRestore,
    assign_partitions,
    case_store,
    customer_store,
    release_partitions,
    restored_then,
    stateful_inputs,
)
from streams.threader import ThreadingPolicy
from streams.timer import SlaTimer
from streams.worker_config import RuleSetHolder, WorkerConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

CRASH_EXIT_CODE = 70
"""Exit status when a batch fails and the worker dies rather than acknowledge it."""


async def _or_die(batch: Awaitable[T]) -> T:
    """Run a batch (its result returned); on any error end the process at once, acknowledging
    nothing.

    faust's `take_events` acknowledges the whole batch when the loop body raises, which
    would commit records that were never processed. Dying without acknowledging means the
    batch is read again by the restarted worker (or the partition's next owner).
    """
    try:
        return await batch
    except asyncio.CancelledError:
        log.critical("worker stopping in the middle of a batch: exiting without acking it")
        os._exit(CRASH_EXIT_CODE)
    except BaseException:
        log.critical("batch failed: exiting without acknowledging it", exc_info=True)
        os._exit(CRASH_EXIT_CODE)


async def _restored_or_die(restore: Awaitable[None]) -> None:
    """A restore that fails ends the process: its partitions would stay held back, unread.

    A worker stopping meanwhile cancels it (no crash)."""
    try:
        await restore
    except asyncio.CancelledError:
        raise
    except BaseException:
        log.critical("restoring the moved partitions failed: exiting", exc_info=True)
        os._exit(CRASH_EXIT_CODE)


def _highwater(app: faust.App, topic: str, partition: int) -> int | None:
    """The end of a partition as the worker's consumer last saw it (None: not known)."""
    try:
        found = app.consumer.highwater(faust.types.TP(topic, partition))
    except Exception:  # not assigned (any more), or the consumer is not started
        return None
    return found if isinstance(found, int) else None


def build_app(
    config: WorkerConfig,
    rules: RuleSetHolder,
    publisher: Publisher,
    identity: IdentityDirectory | None = None,
    threading: ThreadingPolicy | None = None,
    clock: Clock | None = None,
) -> faust.App:
    """Create the faust app with its topics, agents, state and `/metrics` page.

    `clock` drives the SLA timer (the wall clock unless given).
    """
    settings: dict[str, Any] = {
        "broker": config.broker_url,
        "store": "memory://",
        "datadir": config.data_dir,
        "topic_partitions": config.partitions,
        "consumer_auto_offset_reset": "earliest",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "web_port": config.web_port,
        "web_host": config.web_host,
        "web_bind": config.web_host,
        "producer_acks": -1,
        "broker_commit_every": 1000,
        "broker_commit_interval": 1.0,
        "stream_buffer_maxsize": 8192,
        # a crashed worker's partitions move to the others after 10 s, not aiokafka's 60 s
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 3.0,
    }
    settings.update(config.faust_settings)
    app = faust.App(config.app_id, **settings)
    topics = config.topics
    # before anything creates the transport
    use_worker_consumer(app, config.fetch_max_wait_ms, held_back_topics=stateful_inputs(topics))

    def source(*names: str) -> Any:
        return app.topic(
            *names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=config.partitions,
        )

    customers = customer_store(config)
    cases = case_store(config)
    deadlines = DeadlineIndex()
    clock = clock or WallClock()
    event_time = EventTimeProgress(
        (topics.threaded, topics.agent_actions),
        config.sla_lateness_seconds,
        lambda topic, partition: _highwater(app, topic, partition),
        lambda topic, partition: fetched_offsets(app, topic, partition),
    )
    pipeline = Pipeline(
        config,
        rules,
        ReliableWriter(
            publisher, dead_letter_topic=topics.dlq, max_record_bytes=config.max_record_bytes
        ),
        customers,
        cases,
        deadlines,
        identity,
        threading,
        clock,
        event_time,
    )

    pipeline.generation = lambda: app.consumer_generation_id

    moved = MovedRestore(_restored_or_die)
    fetching = Fetching(
        hold_back=lambda tps: cast(Any, app.consumer).hold_back(tps),
        let_go=lambda tps: cast(Any, app.consumer).let_go(tps),
    )

    @app.on_partitions_assigned.connect
    async def restore_state(_app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs["assigned"]
        await assign_partitions(pipeline, config, assigned, (moved, fetching))

    @app.on_before_shutdown.connect
    async def stop_restoring(_app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await moved.stop()  # its thread would otherwise read on and hold up the exit

    @app.on_partitions_revoked.connect
    async def stop_timing(_app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await release_partitions(pipeline, args[0] if args else kwargs["revoked"], moved)

    batch, within = config.batch_max, config.batch_within_seconds

    @app.agent(source(topics.inbound), name="intake")
    async def intake_agent(stream: Any) -> None:
        async for events in stream.take_events(batch, within=within):
            await _or_die(pipeline.intake_batch(events))

    current = pipeline.current

    @app.agent(source(topics.resolved), name="threading")
    async def threading_agent(stream: Any) -> None:
        async for events in stream.take_events(batch, within=within):
            # stale records are set aside before and while waiting for the assignment
            await _or_die(restored_then(customers, events, pipeline.threading_batch, current))

    @app.agent(source(topics.threaded, topics.agent_actions), name="cases")
    async def cases_agent(stream: Any) -> None:
        async for events in stream.take_events(batch, within=within):
            ran = await _or_die(restored_then(cases, events, pipeline.cases_batch, current))
            event_time.processed(event.message for event in ran)

    timer = SlaTimer(
        lambda now: _or_die(pipeline.fire_due(now)),
        deadlines.next_deadline,
        clock,
        config.sla_tick_seconds,
        prepare=lambda now: _or_die(pipeline.prepare_upcoming(now)),
        lateness_seconds=config.sla_lateness_seconds,
    )

    async def sla_timer() -> None:
        await timer.run()

    app.task(sla_timer)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # OpenMetrics (with exemplars) when the scraper asks for it, else the text format.
        # aiohttp refuses a charset inside `content_type`; the header carries it whole.
        body, content_type = render_metrics(request.headers.get("Accept"))
        return web.bytes(body, headers={"Content-Type": content_type})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    pipeline.progress.use_consumer_offsets(lambda: consumer_offsets(app))

    @app.on_partitions_revoked.connect
    async def forget_progress(_app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        pipeline.progress.forget_offsets()  # offsets known again after each stage's next batch

    for stage in ("intake", "threading", "cases"):
        metrics.STAGE_STALLED.labels(stage).set_function(
            functools.partial(pipeline.progress.stalled_for, stage)
        )

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        answer = readiness(
            app.consumer.assignment() if app.consumer else set(),
            bool(app.rebalancing),
            (pipeline.cases, pipeline.customers),
            pipeline.progress.stalled(),
        )
        return web.json(answer.body, status=answer.code)

    return app
