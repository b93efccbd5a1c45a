"""Stage state kept in memory per partition, backed by a compacted changelog topic we write.

Why not faust Tables: on a restart, faust resumes stream partitions before it seeks them to
their committed offsets while tables recover. Records fetched in that window were dropped,
then taken for an offset gap and acknowledged unprocessed (see faust-streaming #312, #606).
Our kill -9 test lost messages that way. Restoring state here, inside the rebalance and
before any stream resumes, keeps faust on its plain path, where the seek happens first.

Each changelog partition holds the state of the input partition of the same number.
Records are `key → JSON state`, written by `save` together with the stage's outputs (in
one transaction per partition) or after them; a restore reads the partition from the
beginning to its high watermark.
A store that indexes deadlines (`deadline_field`) also puts the state's next deadline in
the record header `next-deadline` (RFC 3339 UTC, empty for none), so a restore rebuilds
the deadline index without parsing a single state.

In memory each state is its JSON, zstd-compressed (`StateCodec`), and is decoded only when
a key is touched: a million held cases cost well under a GiB instead of several GiB of
Python objects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import zstandard
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from pydantic import BaseModel

from kafkaio import RecordsRejectedError, clients
from kafkaio.fencing import FencedWriter
from kafkaio.watermarks import watermarks
from streams.output import OutputRecord, ReliableWriter

log = logging.getLogger(__name__)

StateT = TypeVar("StateT", bound=BaseModel)

DEADLINE_HEADER = "next-deadline"
"""Changelog record header carrying the state's next deadline (empty value: none)."""

RESTORE_BATCH = 10_000
"""Changelog records taken per consume call while restoring."""

CHECK_TIMEOUT_SECONDS = 30.0
"""Longest the assignment reads a kept partition's new records to tell whether it was written."""

Deadlines = dict[int, list[tuple[bytes, datetime]]]
"""Per input partition, the keys that have a next deadline, with it."""


class PartitionNotHeldError(LookupError):
    """A partition's state was asked for after a rebalance took the partition away."""


@dataclass(frozen=True)
class EncodedState:
    """A state ready to save: its changelog value and headers, and its packed in-memory form."""

    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    packed: bytes
    deadline: datetime | None = None
    """The state's next deadline, when the store indexes deadlines."""


class StateCodec:
    """How states are held in memory: JSON bytes compressed with zstd and a preset dictionary.

    The dictionary (typical JSON of the stage's state, field names and common values) is
    only ever used in memory, never written anywhere, so changing it (or the compressor)
    needs no migration. zstd with the dictionary as raw content packs a case state in about
    a third of zlib's time (level 1) and a little smaller; see bench/RESULTS.md.
    """

    def __init__(self, dictionary: bytes = b"", level: int = 1) -> None:
        self._dictionary = (
            zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            if dictionary
            else None
        )
        self._level = level
        self._coders = threading.local()
        """zstd's compressor and decompressor objects are not thread-safe: one pair a thread
        (the event loop saves, a restore thread packs what it reads)."""

    def pack(self, document: bytes) -> bytes:
        """Compress one JSON document."""
        compressed = self._pair()[0].compress(document)
        # zstd writes into a buffer of the input's bound and shrinks it in place: the block
        # it leaves behind holds the rest of that bound for good (2.7 KB a held case instead
        # of 0.7 KB, measured). A copy of the right size is allocated afresh.
        return bytes(memoryview(compressed))

    def unpack(self, packed: bytes) -> bytes:
        """The JSON document `pack` was given."""
        return self._pair()[1].decompress(packed)

    def _pair(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None = getattr(
            self._coders, "pair", None
        )
        if pair is None:
            compressor = zstandard.ZstdCompressor(
                level=self._level,
                dict_data=self._dictionary,
                write_checksum=False,  # in memory only: the changelog's record has its CRC
                write_dict_id=False,
            )
            pair = (compressor, zstandard.ZstdDecompressor(dict_data=self._dictionary))
            self._coders.pair = pair
        return pair


class ChangelogState:
    """The state of one stage: `partition → key → packed JSON`, restored on assignment."""

    def __init__(
        self,
        name: str,
        changelog_topic: str,
        source_topic: str,
        connection: Mapping[str, str | int | float | bool],
        *,
        codec: StateCodec | None = None,
        deadline_field: str | None = None,
        fencing: FencedWriter | None = None,
    ) -> None:
        self.name = name
        self.fencing = fencing
        """With it, states are written in transactions that fence a previous owner's writes."""
        self.changelog_topic = changelog_topic
        self.source_topic = source_topic
        self.codec = codec or StateCodec()
        self.deadline_field = deadline_field
        self._connection = dict(connection)
        self._partitions: dict[int, dict[bytes, bytes]] = {}
        self._lock = threading.Lock()
        """Held partitions change in the assignment's thread while the stages read them."""
        self._ends_at_release: dict[int, int] = {}
        """Where each revoked partition's changelog ended when it was revoked."""
        self._released: set[int] = set()
        """Partitions revoked and not assigned again yet: no batch starts on them."""

    @property
    def partitions(self) -> frozenset[int]:
        """The input partitions whose state is held here."""
        return frozenset(self._partitions)

    def __len__(self) -> int:
        # a list first: a restore's thread may add partitions meanwhile
        return sum(map(len, list(self._partitions.values())))

    def load(self, partition: int, key: bytes, model: type[StateT]) -> StateT | None:
        """The state stored under `key` for an input partition, if any (decoded afresh).

        Raises PartitionNotHeldError when the partition is not (or no longer) held here.
        """
        held = self._partitions.get(partition)
        if held is None:
            raise PartitionNotHeldError(f"{self.name}: partition {partition} is not held here")
        packed = held.get(key)
        return None if packed is None else model.model_validate_json(self.codec.unpack(packed))

    def version(self, partition: int, key: bytes) -> bytes | None:
        """The held (packed) state of a key: a new object after every save, None if absent.

        Lets a caller tell, by identity, whether a state changed since it last looked.
        """
        held = self._partitions.get(partition)
        return None if held is None else held.get(key)

    def hold(self, partition: int, states: Iterable[tuple[bytes, bytes]]) -> None:
        """Hold a partition, adding these `(key, JSON)` states, without a changelog (tests)."""
        with self._lock:
            held = self._partitions.setdefault(partition, {})
            for key, document in states:
                held[key] = self.codec.pack(document)

    def ready(self, partitions: Iterable[int]) -> bool:
        """Whether a batch may start on these partitions: each held, and assigned again since
        it was last revoked (faust resumes streams before the assignment handler runs)."""
        wanted = set(partitions)
        return wanted <= self._partitions.keys() and not wanted & self._released

    def encode(self, state: BaseModel) -> EncodedState:
        """A state as its changelog record and its in-memory form (done ahead of `save`)."""
        value = state.model_dump_json().encode("utf-8")
        headers: tuple[tuple[str, bytes], ...] = ()
        deadline: datetime | None = None
        if self.deadline_field is not None:
            deadline = getattr(state, self.deadline_field)
            headers = ((DEADLINE_HEADER, _deadline_text(deadline)),)
        return EncodedState(value, headers, self.codec.pack(value), deadline)

    async def save(
        self,
        writer: ReliableWriter,
        dirty: Mapping[bytes, tuple[int, BaseModel | EncodedState]],
        outputs: Mapping[int, Sequence[OutputRecord]] | None = None,
        stage: str = "output",
    ) -> None:
        """Write changed states to the changelog (acknowledged), then keep them in memory.

        `outputs` are the records the batch caused, per input partition. With fencing, a
        partition's outputs and states go in one transaction: a crash leaves both or
        neither, so nothing downstream ever sees an output of a state that was lost (a
        replay would otherwise write the same event ids from a different state, as soon
        as other inputs interleave differently). Without fencing (`hold`, tests) outputs
        are written first, then states.

        States of partitions no longer held (moved to another worker during the batch)
        are neither written nor kept, and neither are their outputs: the partition's new
        owner has the say over them and processes their inputs again.
        """
        outputs = outputs or {}
        encoded = {
            key: (partition, state if isinstance(state, EncodedState) else self.encode(state))
            for key, (partition, state) in dirty.items()
            if partition in self._partitions
        }
        states: dict[int, list[OutputRecord]] = {}
        for key, (partition, state) in encoded.items():
            states.setdefault(partition, []).append(
                OutputRecord(self.changelog_topic, key, state.value, state.headers, partition)
            )
        held = set(self._partitions)
        fenced = self.fencing.partitions if self.fencing is not None else frozenset()
        caused = {partition for partition, batch in outputs.items() if batch}
        together = (set(states) | caused) & held & fenced  # no empty transactions
        # partitions held without a changelog owner (`hold`, tests) go through the writer
        await writer.write(
            [r for p, batch in outputs.items() if p in held - fenced for r in batch], stage
        )
        await writer.write([r for p, batch in states.items() if p not in fenced for r in batch])
        await asyncio.gather(
            *(
                self._write_together(
                    writer, partition, outputs.get(partition, ()), states.get(partition, []), stage
                )
                for partition in together
            )
        )
        for key, (partition, state) in encoded.items():
            kept = self._partitions.get(partition)
            if kept is not None:  # a rebalance may have taken it during the write
                kept[key] = state.packed

    async def _write_together(
        self,
        writer: ReliableWriter,
        partition: int,
        outputs: Sequence[OutputRecord],
        states: list[OutputRecord],
        stage: str,
    ) -> None:
        """One partition's outputs and states in one transaction.

        An output that can never be written (over the record limit, an invalid topic) would
        abort the transaction for ever: oversize ones are dead-lettered up front, and if the
        broker still refuses one, the outputs go through the writer (which dead-letters what
        it must) and the states follow alone, as without fencing.
        """
        assert self.fencing is not None
        bounded = writer.bounded(outputs, stage)
        try:
            await self.fencing.write_partition(partition, [*bounded, *states])
        except RecordsRejectedError as exc:
            log.warning(
                "%s: partition %d's outputs refused in a transaction (%s): written one by one",
                self.name,
                partition,
                exc,
            )
            await writer.write(bounded, stage)
            if states:
                await self.fencing.write_partition(partition, states)

    def assign(self, partitions: Iterable[int]) -> Deadlines:
        """Hold exactly these partitions: drop the others, restore the ones not held yet.

        Returns the deadlines found in the restored partitions (none without
        `deadline_field`); partitions held before keep theirs wherever they are indexed.
        `keep` then `restore`, in one call (blocking).
        """
        return self.restore(self.keep(partitions)) or {}

    def keep(self, partitions: Iterable[int]) -> list[int]:
        """Hold at most these partitions: drop the others and the ones written elsewhere
        since they were released; return the wanted ones not held, for `restore` (blocking).

        The kept partitions' batches may start again. Their previous owners are fenced
        before anything of theirs is restored.
        """
        wanted = set(partitions)
        stale = self._written_elsewhere(wanted & set(self._partitions))
        with self._lock:
            for gone in (set(self._partitions) - wanted) | stale:
                del self._partitions[gone]
            self._released.clear()  # the kept partitions' batches may start
        missing = sorted(wanted - set(self._partitions))
        if self.fencing is not None:
            self.fencing.keep_only(wanted)
            self.fencing.open(missing)  # fence the previous owners before reading their writes
        return missing

    def restore(
        self, partitions: Sequence[int], cancelled: threading.Event | None = None
    ) -> Deadlines | None:
        """Read these partitions' changelogs and hold what they say; return their deadlines
        (blocking).

        Runs while batches of the partitions already held go on. When `cancelled` is set
        (a rebalance revokes the partitions meanwhile) it stops, holds nothing and returns
        None. Once it returns deadlines the partitions are held, whatever is cancelled
        after: the caller indexes them.
        """
        if not partitions:
            return {}
        restored, deadlines = self._restore(list(partitions), cancelled)
        if cancelled is not None and cancelled.is_set():
            return None
        with self._lock:
            self._partitions.update(restored)
        log.info(
            "%s: restored %d keys for partitions %s",
            self.name,
            sum(len(keys) for keys in restored.values()),
            list(partitions),
        )
        return deadlines

    def release(self, partitions: Iterable[int]) -> None:
        """A rebalance revokes these partitions: note where their changelogs end (blocking).

        Their state is kept in case they come back; `assign` keeps it only if nobody
        wrote their changelog meanwhile (another owner did, while this worker stalled).
        Until then no new batch starts on them (`ready`): one would write the changelog
        itself, and the partition would be restored for nothing. Batches already under
        way finish as before.
        """
        revoked = set(partitions)
        self._released |= revoked
        held = sorted(revoked & self._partitions.keys())
        self._ends_at_release.update(self._changelog_ends(held))

    def _written_elsewhere(self, kept: set[int]) -> set[int]:
        """Kept partitions whose changelog gained a record since they were released: restore
        them.

        Only a committed record, or a transaction still open, counts: the marker of this
        worker's last commit can land after the revocation noted the end (the coordinator
        writes markers after the commit returns), and aborted records change no state.
        """
        noted = {p: end for p, end in self._ends_at_release.items() if p in kept}
        self._ends_at_release.clear()
        if not noted:
            return set()
        consumer = clients.consumer(
            self._connection,
            f"{self.changelog_topic}.restore",
            {"enable.partition.eof": True, "auto.offset.reset": "error"},
        )
        try:
            now = self._ends_of(consumer, noted)
            grown = {p: end for p, end in noted.items() if now[p] != end}
            moved = self._written_since(consumer, grown, now) if grown else set()
        finally:
            consumer.close()
        if moved:
            log.warning("%s: partitions %s were written elsewhere: restoring", self.name, moved)
        return moved

    def _written_since(
        self, consumer: Consumer, since: dict[int, int], ends: dict[int, int]
    ) -> set[int]:
        """The partitions with a committed record, or an open transaction, between `since`
        and `ends` (blocking); one that cannot be told within the timeout counts as written.

        `consumer` reports the end of a partition (`enable.partition.eof`); one event per
        partition decides it, so each poll returns as soon as there is one.
        """
        pending = set(since)
        written: set[int] = set()
        consumer.assign(
            [TopicPartition(self.changelog_topic, p, offset) for p, offset in since.items()]
        )
        give_up = time.monotonic() + CHECK_TIMEOUT_SECONDS
        while pending and time.monotonic() < give_up:
            message = consumer.poll(1.0)
            partition = None if message is None else message.partition()
            if message is None or partition is None or partition not in pending:
                continue
            pending.discard(partition)
            error = message.error()
            at_end = error is not None and error.code() == KafkaError._PARTITION_EOF
            # a record, an error, or an end short of the high watermark (the rest is an open
            # transaction) all say: written
            if not at_end or (message.offset() or 0) < ends.get(partition, 0):
                written.add(partition)
        return written | pending

    def _changelog_ends(self, partitions: Iterable[int]) -> dict[int, int]:
        """The changelog's end offset per partition (blocking)."""
        wanted = list(partitions)
        if not wanted:
            return {}
        consumer = clients.consumer(self._connection, f"{self.changelog_topic}.restore")
        try:
            return self._ends_of(consumer, wanted)
        finally:
            consumer.close()

    def _ends_of(self, consumer: Consumer, partitions: Iterable[int]) -> dict[int, int]:
        """The changelog's end offset per partition, through `consumer` (blocking)."""
        return {
            partition: watermarks(consumer, self.changelog_topic, partition, 30)[1]
            for partition in partitions
        }

    def _restore(
        self, partitions: list[int], cancelled: threading.Event | None = None
    ) -> tuple[dict[int, dict[bytes, bytes]], Deadlines]:
        """Read changelog partitions from the start to their high watermarks (blocking);
        stop early, with what was read so far, once `cancelled` is set."""
        consumer = clients.consumer(
            self._connection, f"{self.changelog_topic}.restore", {"enable.partition.eof": True}
        )
        restored: dict[int, dict[bytes, bytes]] = {partition: {} for partition in partitions}
        # the last deadline seen per key; None = the key has none (or was deleted)
        due: dict[int, dict[bytes, datetime | None]] = {partition: {} for partition in partitions}
        try:
            ends = self._ends_of(consumer, partitions)
            pending = {partition for partition, end in ends.items() if end > 0}
            consumer.assign(
                [
                    TopicPartition(self.changelog_topic, partition, OFFSET_BEGINNING)
                    for partition in pending
                ]
            )
            while pending and not (cancelled is not None and cancelled.is_set()):
                for message in consumer.consume(RESTORE_BATCH, 1.0):
                    partition = message.partition() or 0
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            raise RuntimeError(f"restoring {self.changelog_topic}: {error}")
                    elif message.key() is not None:
                        self._take(message, restored[partition], due[partition])
                    offset = message.offset()
                    if offset is not None and offset + 1 >= ends[partition]:
                        pending.discard(partition)
        finally:
            consumer.close()
        deadlines = {
            partition: [(key, at) for key, at in keyed.items() if at is not None]
            for partition, keyed in due.items()
        }
        return restored, deadlines

    def _take(
        self,
        message: Message[Any, Any],
        states: dict[bytes, bytes],
        due: dict[bytes, datetime | None],
    ) -> None:
        """Apply one changelog record to the partition being restored."""
        key: bytes = message.key()  # type: ignore[assignment]
        value: bytes | None = message.value()
        if value is None:
            states.pop(key, None)
            due.pop(key, None)
            return
        states[key] = self.codec.pack(value)
        if self.deadline_field is not None:
            due[key] = self._record_deadline(message, value)

    def _record_deadline(self, message: Message[Any, Any], value: bytes) -> datetime | None:
        """The deadline in the record's header; records written before it existed: parsed."""
        headers = message.headers() or ()
        for name, found in headers.items() if isinstance(headers, dict) else headers:
            if name == DEADLINE_HEADER:
                text = found.decode() if isinstance(found, bytes) else found
                return datetime.fromisoformat(text) if text else None
        raw = json.loads(value).get(self.deadline_field or "")
        return datetime.fromisoformat(raw) if raw else None


def _deadline_text(deadline: datetime | None) -> bytes:
    if deadline is None:
        return b""
    return deadline.isoformat().replace("+00:00", "Z").encode()
