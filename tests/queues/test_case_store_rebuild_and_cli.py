"""`db rebuild` and the `cases`/`db` commands, against the real broker and a real database."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import typer
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from typer.testing import CliRunner

from escalator.commands import cases as cases_command
from escalator.commands import db as db_command
from queues import (
    Projection,
    ProjectionMetrics,
    StoreNotEmptyError,
    make_engine,
    make_session_factory,
    rebuild,
)
from queues.rebuild import REBUILD_GROUP_PREFIX
from schemas import Priority, Topics
from tests.kafka_support import create_topics, produce
from tests.queues.case_event_builders import (
    appended,
    case_id,
    conversation,
    opened,
    other,
    routed,
    snapshot,
    to_bytes,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
def events_topic(kafka_bootstrap: str, topics: Topics) -> str:
    create_topics(kafka_bootstrap, [topics.case_events], partitions=3)
    events = [
        *conversation("cust-a", messages=2),
        *conversation("cust-b", messages=1, queue="billing"),
        opened("cust-c"),
        appended("cust-c", 1, channel="twitter", text="@shop my parcel is lost"),
        routed("cust-c", queue="social", priority=Priority.HIGH, tags=["social"]),
        other("cust-a", "sla.breached"),
    ]
    pairs = [(event.case_id, to_bytes(event)) for event in events]
    produce(kafka_bootstrap, topics.case_events, [*pairs, (b"C-BROKEN", b"\x00garbage")])
    return topics.case_events


def project(kafka_bootstrap: str, topic: str, engine: Engine) -> None:
    with Projection(
        kafka_config={"bootstrap.servers": kafka_bootstrap},
        topic=topic,
        session_factory=make_session_factory(engine),
        group_id=f"test-projection-{uuid.uuid4().hex[:12]}",
    ) as projection:
        projection.catch_up(timeout_seconds=60)


def test_rebuild_into_a_fresh_database_gives_the_same_rows(
    kafka_bootstrap: str, events_topic: str, engine: Engine, tmp_path: Path
) -> None:
    project(kafka_bootstrap, events_topic, engine)
    fresh_url = f"sqlite:///{(tmp_path / 'rebuilt' / 'cases.db').as_posix()}"

    report = rebuild(
        database_url=fresh_url,
        kafka_config={"bootstrap.servers": kafka_bootstrap},
        topic=events_topic,
        timeout_seconds=60,
        metrics=ProjectionMetrics(CollectorRegistry()),
    )

    assert report.cases == 3
    assert report.records == 13  # 12 events and one malformed record
    rebuilt = make_engine(fresh_url)
    assert snapshot(rebuilt) == snapshot(engine)
    rebuilt.dispose()
    # the client is kept referenced until its answer is in: a destroyed client never answers
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    groups = admin.list_consumer_groups(request_timeout=30).result(timeout=60)
    assert report.group_id.startswith(REBUILD_GROUP_PREFIX)
    assert report.group_id not in {group.group_id for group in groups.valid}


def test_rebuild_refuses_a_store_with_cases_unless_forced(
    kafka_bootstrap: str, events_topic: str, engine: Engine, migrated_url: str
) -> None:
    project(kafka_bootstrap, events_topic, engine)
    before = snapshot(engine)
    options = {
        "database_url": migrated_url,
        "kafka_config": {"bootstrap.servers": kafka_bootstrap},
        "topic": events_topic,
        "timeout_seconds": 60.0,
    }

    with pytest.raises(StoreNotEmptyError):
        rebuild(**options)  # type: ignore[arg-type]
    report = rebuild(**options, force=True)  # type: ignore[arg-type]

    assert report.cases == 3
    engine.dispose()
    assert snapshot(engine) == before


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(db_command.app, name="db")
    app.add_typer(cases_command.app, name="cases")
    return app


def test_the_commands_upgrade_rebuild_list_and_show(
    kafka_bootstrap: str,
    events_topic: str,
    topics: Topics,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ESCALATOR_DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ESCALATOR_TOPIC_PREFIX", topics.prefix)
    runner = CliRunner()

    not_yet = runner.invoke(cli(), ["cases", "list"])
    assert not_yet.exit_code == 1
    assert "escalator db upgrade" in not_yet.output

    script = runner.invoke(cli(), ["db", "upgrade", "--sql"])
    assert script.exit_code == 0, script.output
    assert "CREATE TABLE cases" in script.output

    upgraded = runner.invoke(cli(), ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output

    rebuilt = runner.invoke(cli(), ["db", "rebuild", "--timeout", "60"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "3 cases" in rebuilt.output

    refused = runner.invoke(cli(), ["db", "rebuild", "--timeout", "60"])
    assert refused.exit_code == 1
    assert "--force" in refused.output

    listed = runner.invoke(cli(), ["cases", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    cases = json.loads(listed.output)
    assert cases[0]["case_id"] == case_id("cust-c")  # high before normal
    assert set(cases[0]) >= {
        "case_id",
        "queue",
        "priority",
        "status",
        "customer_id",
        "channels",
        "tags",
        "message_count",
        "opened_at",
    }
    assert cases[0]["channels"] == ["email", "twitter"]

    billing = json.loads(
        runner.invoke(cli(), ["cases", "list", "--queue", "billing", "--json"]).output
    )
    assert [case["case_id"] for case in billing] == [case_id("cust-b")]

    table = runner.invoke(cli(), ["cases", "list", "--status", "open", "--limit", "2"])
    assert table.exit_code == 0
    assert case_id("cust-c") in table.output

    shown = runner.invoke(cli(), ["cases", "show", case_id("cust-a"), "--json"])
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert len(detail["messages"]) == 2
    assert [event["type"] for event in detail["events"]].count("sla.breached") == 1

    readable = runner.invoke(cli(), ["cases", "show", case_id("cust-a")])
    assert readable.exit_code == 0
    assert "message.appended" in readable.output

    missing = runner.invoke(cli(), ["cases", "show", "C-NOSUCHCASE"])
    assert missing.exit_code == 1
