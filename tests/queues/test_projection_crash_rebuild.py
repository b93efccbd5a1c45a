"""On the real broker: a projection that dies in the middle of a batch, restarted, ends with
the store `db rebuild` makes from the topic, as the chaos harness checks it.

The first projection is killed (an exception no handler catches, as a SIGKILL would leave
it) while it writes its third batch: its earlier batches are committed with their offsets,
the dead one is not. A second projection in the same group goes on from the committed
offsets. The store must then equal a rebuild into a fresh database: compared row by row by
`chaos.store_check` on SQLite (the harness's own check), and table by table on PostgreSQL.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, event

from chaos import store_check
from queues import Outcome, Projection, ProjectionMetrics, make_engine, make_session_factory
from queues import rebuild as rebuild_store
from schemas import Topics
from tests import postgres_support
from tests.kafka_support import create_topics, produce
from tests.queues.case_event_builders import snapshot, to_bytes
from tests.queues.test_projection_batches import interleaved

pytestmark = pytest.mark.kafka


class Killed(BaseException):
    """The projection process dying: nothing of it runs any more."""


def kill_at_third_batch(engine: Engine) -> None:
    """Make the engine die when the third batch sends its cases.

    A batch writes its cases with one statement, whatever the dialect: an executemany of
    `INSERT INTO cases …` on SQLite, `WITH staged AS (…) INSERT INTO cases …` from a
    staging table on PostgreSQL.
    """
    batches = 0

    def before(*args: Any) -> None:
        nonlocal batches
        if "INSERT INTO cases (" in str(args[2]):
            batches += 1
            if batches == 3:
                raise Killed

    event.listen(engine, "before_cursor_execute", before)


def projection(bootstrap: str, topic: str, engine: Engine, group_id: str) -> Projection:
    return Projection(
        kafka_config={"bootstrap.servers": bootstrap},
        topic=topic,
        session_factory=make_session_factory(engine),
        group_id=group_id,
        batch_size=10,
    )


def test_a_projection_killed_mid_batch_and_restarted_equals_a_rebuild(
    kafka_bootstrap: str, topics: Topics, migrated_url: str, tmp_path: Path
) -> None:
    create_topics(kafka_bootstrap, [topics.case_events], partitions=1)
    events = interleaved(customers=6)
    produce(kafka_bootstrap, topics.case_events, [(e.case_id, to_bytes(e)) for e in events])
    group_id = f"test-crash-{uuid.uuid4().hex[:12]}"

    dying = make_engine(migrated_url)
    kill_at_third_batch(dying)
    with (
        pytest.raises(Killed),
        projection(kafka_bootstrap, topics.case_events, dying, group_id) as first,
    ):
        first.catch_up(timeout_seconds=60)
    assert first.totals.records == 20  # two batches committed before the third died
    dying.dispose()

    live = make_engine(migrated_url)
    with projection(kafka_bootstrap, topics.case_events, live, group_id) as second:
        assert second.catch_up(timeout_seconds=60) == len(events) - 20
    assert second.totals.outcomes[Outcome.DUPLICATE] == 6  # the in-topic redeliveries only

    if live.dialect.name == "sqlite":
        rebuilt_url = f"sqlite:///{(tmp_path / 'rebuilt.db').as_posix()}"
        rebuild_into(kafka_bootstrap, topics.case_events, rebuilt_url)
        assert store_check.differences(migrated_url, rebuilt_url) == []
        rebuilt = make_engine(rebuilt_url)
        assert snapshot(rebuilt) == snapshot(live)
        rebuilt.dispose()
    else:
        server = postgres_support.server_url()
        database = postgres_support.create_database(server)
        try:
            rebuilt_url = database.render_as_string(hide_password=False)
            rebuild_into(kafka_bootstrap, topics.case_events, rebuilt_url)
            rebuilt = make_engine(rebuilt_url)
            assert snapshot(rebuilt) == snapshot(live)
            rebuilt.dispose()
        finally:
            postgres_support.drop_database(server, database)
    live.dispose()


def rebuild_into(bootstrap: str, topic: str, database_url: str) -> None:
    report = rebuild_store(
        database_url=database_url,
        kafka_config={"bootstrap.servers": bootstrap},
        topic=topic,
        timeout_seconds=60,
        metrics=ProjectionMetrics(CollectorRegistry()),
        batch_size=7,
    )
    assert report.cases == 6
