"""A real PostgreSQL server for tests: one database per test, created and dropped on it.

The server comes from `ESCALATOR_TEST_DATABASE_URL` (`make test` sets it from
`deploy/postgres/postgres.sh ensure`); without it, the script is run once per session.
A server that cannot be had fails the tests that need it: they are never skipped.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

TEST_DATABASE_URL_ENV = "ESCALATOR_TEST_DATABASE_URL"
POSTGRES_SH = Path(__file__).resolve().parent.parent / "deploy" / "postgres" / "postgres.sh"
POSTGRES_START_TIMEOUT_S = 600  # a cold machine installs the Debian package first


class PostgresUnavailableError(Exception):
    """No PostgreSQL server could be found or started for the tests."""


def server_url() -> URL:
    """The URL of the test server's own database, from the environment or the dev script."""
    configured = os.environ.get(TEST_DATABASE_URL_ENV)
    if configured:
        url = make_url(configured)
    else:
        try:
            result = subprocess.run(
                ["bash", str(POSTGRES_SH), "ensure"],
                capture_output=True,
                text=True,
                timeout=POSTGRES_START_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PostgresUnavailableError(f"could not run {POSTGRES_SH}: {error}") from error
        if result.returncode != 0:
            raise PostgresUnavailableError(
                f"{POSTGRES_SH} ensure failed (exit {result.returncode}):\n{result.stderr}"
            )
        url = make_url(result.stdout.strip().splitlines()[-1])
    if url.get_backend_name() != "postgresql":
        raise PostgresUnavailableError(f"{TEST_DATABASE_URL_ENV} is not a PostgreSQL URL: {url}")
    try:
        with create_engine(url).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        raise PostgresUnavailableError(f"no PostgreSQL answers at {url!r}: {error}") from error
    return url


def create_database(server: URL) -> URL:
    """Create an empty database with a unique name on `server`; return its URL."""
    name = f"escalator_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return server.set(database=name)


def drop_database(server: URL, database: URL) -> None:
    """Drop `database`, disconnecting whatever is still connected to it."""
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database.database}" WITH (FORCE)'))
    finally:
        engine.dispose()
