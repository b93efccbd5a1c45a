"""The webhooks' replay window shared by every process of one ingress (a SQLite file).

With `ESCALATOR_HTTP_WORKERS` above one, the kernel hands each connection to whichever
process accepts it first, so a replayed delivery usually reaches another process than the
original did. A memory per process (`ReplayCache`) would take it as new; this one keeps the
deliveries in one SQLite file that all processes of the ingress open, and claims a delivery
inside one write transaction, so exactly one process takes it however many race for it.

It keeps `ReplayCache`'s bounds (at most `max_entries` names, the oldest go first; none older
than `max_age_seconds`) and its meaning: a cheap, visible first line before the pipeline's
idempotency on `channel` + `external_id`. The file is a cache: `escalator connect http`
creates it in a fresh temporary folder at start and removes it at exit; a crash loses it,
as a restart loses `ReplayCache`. Replicas (pods) still each have their own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from connectors.channels._replay import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ENTRIES,
    EVICTIONS,
    delivery_key,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key BLOB NOT NULL UNIQUE,
    seen_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_seen_at ON deliveries (seen_at);
"""


class SharedReplayCache:
    """`ReplayCache` over a SQLite file, so that several processes share one window."""

    def __init__(
        self,
        path: Path,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1 or max_age_seconds <= 0:
            raise ValueError("the replay cache needs room for one entry and a positive age")
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._clock = clock  # wall time: every process of the ingress must read the same clock
        # autocommit mode: each claim is one explicit BEGIN IMMEDIATE ... COMMIT
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # a cache: losing it in a crash is fine
        self._db.executescript(_SCHEMA)

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM deliveries").fetchone()
        return int(count)

    def claim(self, channel: str, delivery_id: str) -> bool:
        """True for a delivery not seen within the window (now remembered); False for a replay.

        The check and the insert are one write transaction: of several processes claiming
        the same delivery at once, exactly one gets True.
        """
        now = self._clock()
        key = delivery_key(channel, delivery_id)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM deliveries WHERE seen_at < ?", (now - self._max_age,))
            if db.execute("SELECT 1 FROM deliveries WHERE key = ?", (key,)).fetchone():
                db.execute("COMMIT")
                return False
            cursor = db.execute("INSERT INTO deliveries (key, seen_at) VALUES (?, ?)", (key, now))
            newest = cursor.lastrowid or 0
            evicted = db.execute(
                "DELETE FROM deliveries WHERE seq <= ?", (newest - self._max_entries,)
            ).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if evicted > 0:
            EVICTIONS.inc(evicted)
        return True

    def seen(self, channel: str, delivery_id: str) -> bool:
        """Whether a delivery was claimed within the window (remembers nothing new)."""
        row = self._db.execute(
            "SELECT 1 FROM deliveries WHERE key = ? AND seen_at >= ?",
            (delivery_key(channel, delivery_id), self._clock() - self._max_age),
        ).fetchone()
        return row is not None

    def release(self, channel: str, delivery_id: str) -> None:
        """Forget a claimed delivery that was not taken (Kafka refused it), so a retry is new."""
        self._db.execute(
            "DELETE FROM deliveries WHERE key = ?", (delivery_key(channel, delivery_id),)
        )

    def close(self) -> None:
        """Close this process's connection to the file."""
        self._db.close()
