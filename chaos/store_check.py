"""The case store against a rebuild from `cases.events`: the projection lost or invented nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import create_engine, text

TABLES: dict[str, str] = {
    "cases": "case_id",
    "messages": "case_id, message_key",
    "case_events": "event_id",
    "assignments": "event_id",
}
"""The tables made only from `cases.events`, with the order that makes two dumps comparable."""


def count_events(database_url: str) -> int:
    """Rows in the store's audit table (0 before the schema exists)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM case_events")).scalar_one())
    except Exception:  # the projection has not created its schema yet
        return 0
    finally:
        engine.dispose()


def _dump(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                table: [
                    tuple(row)
                    for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))
                ]
                for table, order in TABLES.items()
            }
    finally:
        engine.dispose()


def rebuild(env: Mapping[str, str], database_url: str, log_dir: Path) -> None:
    """Run `escalator db rebuild --force` into `database_url`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "rebuild.log").open("wb") as log:
        subprocess.run(
            [sys.executable, "-m", "escalator", "db", "rebuild", "--force"],
            env={**env, "ESCALATOR_DATABASE_URL": database_url},
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=1800,
        )


def differences(live_url: str, rebuilt_url: str, limit: int = 5) -> list[str]:
    """What differs between the live store and the rebuilt one (empty when they match)."""
    live, rebuilt = _dump(live_url), _dump(rebuilt_url)
    found: list[str] = []
    for table in TABLES:
        left, right = set(live[table]), set(rebuilt[table])
        if left == right:
            continue
        only_live, only_rebuilt = sorted(left - right, key=str), sorted(right - left, key=str)
        found.append(
            f"{table}: {len(only_live)} rows only in the store, {len(only_rebuilt)} only in the "
            f"rebuild; e.g. {only_live[:limit]} / {only_rebuilt[:limit]}"
        )
    return found
