"""Records a stage cannot process become dead letters, one record at a time.

A stage wraps each record's processing; whatever the record makes it raise (a parse
error, a value the rules or the topic names refuse, a recursion limit) ends as a
`DeadLetter` on `messages.dlq` with the stage, the reason and the record's place, and the
stage goes on with the next record. Everything in the letter comes from the record and
the exception, so a replay writes the same letters.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

from pydantic import ValidationError

from schemas import DeadLetter
from streams import metrics
from streams.intake import RawRecord, dead_letter
from streams.output import OutputRecord, Publisher, ReliableWriter

log = logging.getLogger(__name__)


class MisroutedError(ValueError):
    """A keyed record on another partition than the rest of its key's records.

    Its producer does not partition like ours (murmur2, as Java clients do): applying it
    would split the key's state between two partitions.
    """


def reason_of(error: Exception) -> tuple[str, str]:
    """A short reason and a detail for what a record made a stage raise."""
    if isinstance(error, MisroutedError):
        return "misrouted", str(error)
    if isinstance(error, ValidationError):
        problems = error.errors(include_url=False)
        unparsed = bool(problems) and problems[0]["type"] == "json_invalid"
        reason = "invalid_json" if unparsed else "invalid_record"
        detail = "; ".join(
            f"{'.'.join(str(p) for p in problem['loc']) or '(record)'}: {problem['msg']}"
            for problem in problems[:20]
        )
        return reason, detail
    return "unprocessable", f"{type(error).__name__}: {error}"


def letter_record(dlq_topic: str, dead: DeadLetter, key: bytes | None) -> OutputRecord:
    """A dead letter as the record to write (keyed like the refused record when it can be)."""
    metrics.DEAD_LETTERS.labels(dead.stage or "unknown", dead.reason).inc()
    carried = key if dead.original_key_b64 is not None else None
    return OutputRecord(dlq_topic, carried, dead.model_dump_json().encode("utf-8"))


def poisoned(
    dlq_topic: str, stage: str, record: RawRecord, error: Exception, max_bytes: int
) -> OutputRecord:
    """The dead-letter record for a record whose processing raised `error`."""
    reason, detail = reason_of(error)
    log.warning(
        "%s: record %s[%d]@%d dead-lettered (%s): %s",
        stage,
        record.topic,
        record.partition,
        record.offset,
        reason,
        detail[:500],
    )
    dead = dead_letter(record, reason, detail, stage, max_bytes)
    return letter_record(dlq_topic, dead, record.key)


class ThreadDeadLetters:
    """Writes the dead letters of code that runs outside the event loop (the topic followers).

    Each letter is written through its own `ReliableWriter` run on a short-lived thread of
    its own, so it works from the main thread at start-up as from a follower's thread.
    Poison records are rare; simplicity wins over speed here.
    """

    def __init__(self, publisher: Publisher, dlq_topic: str, stage: str, max_bytes: int) -> None:
        self._writer = ReliableWriter(
            publisher, dead_letter_topic=dlq_topic, max_record_bytes=max_bytes
        )
        self._dlq_topic = dlq_topic
        self._stage = stage
        self._max_bytes = max_bytes

    def __call__(self, record: RawRecord, error: Exception) -> None:
        """Write the dead letter of `record` and wait until the broker acknowledged it."""
        self._write([poisoned(self._dlq_topic, self._stage, record, error, self._max_bytes)])

    def write_letters(self, letters: Sequence[tuple[bytes | None, DeadLetter]]) -> None:
        """Write ready dead letters (key, letter) and wait until they are acknowledged."""
        self._write(
            [
                OutputRecord(self._dlq_topic, key, letter.model_dump_json().encode("utf-8"))
                for key, letter in letters
            ]
        )

    def _write(self, outputs: list[OutputRecord]) -> None:
        failures: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._writer.write(outputs, self._stage))
            except BaseException as error:  # handed to the caller's thread
                failures.append(error)

        writer = threading.Thread(target=run, name=f"{self._stage}-dead-letter")
        writer.start()
        writer.join()
        if failures:
            raise failures[0]
