"""Shared pytest fixtures: a real Kafka broker for the session and unique topic names per test.

`kafka_bootstrap` uses `KAFKA_BOOTSTRAP_SERVERS` when set; otherwise it runs
`deploy/kafka/kafka.sh start` once (idempotent: a running broker is reused). If no broker can
be had the fixture fails the test loudly; it never skips. With `CI=true` any skipped test is
reported as a failure, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from schemas import Topics
from tests import postgres_support
from tests.kafka_support import broker_answers, delete_topics_with_prefix

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
KAFKA_START_TIMEOUT_S = 600  # a cold start may fetch jars from Maven Central first


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The bootstrap servers of a running Kafka broker, started for the session if needed."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        if not broker_answers(configured, timeout=30.0):
            pytest.fail(f"no Kafka answers at KAFKA_BOOTSTRAP_SERVERS={configured}", pytrace=False)
        return configured
    try:
        result = subprocess.run(
            ["bash", str(KAFKA_SH), "start"],
            capture_output=True,
            text=True,
            timeout=KAFKA_START_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"could not run {KAFKA_SH} start: {error}", pytrace=False)
    if result.returncode != 0:
        pytest.fail(
            f"{KAFKA_SH} start failed (exit {result.returncode}); tests marked `kafka` need a "
            f"broker (or set KAFKA_BOOTSTRAP_SERVERS; deselect with -m 'not kafka'):\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
    host = os.environ.get("KAFKA_HOST", "localhost")
    port = os.environ.get("KAFKA_PORT", "9092")
    return f"{host}:{port}"


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A topic prefix unique to this test, e.g. `t1a2b3c4d.`, so tests never share topics.

    When the test used the broker, its topics are deleted afterwards (best effort), so a
    long-lived dev broker does not pile up thousands of partitions that slow its restarts.
    """
    prefix = f"t{uuid.uuid4().hex[:8]}."
    yield prefix
    if "kafka_bootstrap" in request.fixturenames:
        delete_topics_with_prefix(request.getfixturevalue("kafka_bootstrap"), prefix)


@pytest.fixture
def topics(topic_prefix: str) -> Topics:
    """The project's topic names under this test's unique prefix."""
    return Topics(topic_prefix)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL (password included) of a running PostgreSQL server for the session.

    `ESCALATOR_TEST_DATABASE_URL` when set, else `deploy/postgres/postgres.sh ensure`.
    Fails (never skips) when no server can be had.
    """
    try:
        return postgres_support.server_url().render_as_string(hide_password=False)
    except postgres_support.PostgresUnavailableError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def postgres_database_url(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database for this test, dropped afterwards."""
    server = make_url(postgres_server)
    database = postgres_support.create_database(server)
    yield database.render_as_string(hide_password=False)
    postgres_support.drop_database(server, database)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the broker as `kafka`, so `-m 'not kafka'` deselects it."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In CI a skipped test is a failed test: report it as one, with the skip reason."""
    report = yield
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), which is not allowed: {reason}"
    return report
