"""The in-memory state codec: what it packs comes back whole, from any thread, and small."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from streams.case_state import state_dictionary
from streams.state_store import StateCodec

DICTIONARY = state_dictionary()


@given(st.binary(max_size=20_000))
def test_a_packed_document_unpacks_to_itself(document: bytes) -> None:
    codec = StateCodec(DICTIONARY)
    assert codec.unpack(codec.pack(document)) == document
    assert StateCodec().unpack(StateCodec().pack(document)) == document


def test_each_pack_starts_afresh_from_the_dictionary() -> None:
    """A packed state does not depend on what was packed before it (states are independent)."""
    codec = StateCodec(DICTIONARY)
    documents = [DICTIONARY.replace(b"general", word) for word in (b"billing", b"vip", b"x" * 40)]
    first = [codec.pack(document) for document in documents]
    assert [codec.pack(document) for document in reversed(documents)] == first[::-1]
    assert [StateCodec(DICTIONARY).unpack(packed) for packed in first] == documents


def test_threads_packing_at_once_each_get_their_own_documents_back() -> None:
    """The event loop saves while a restore thread packs: the coders are not shared."""
    codec = StateCodec(DICTIONARY)
    failures: list[str] = []

    def work(word: bytes) -> None:
        document = DICTIONARY.replace(b"general", word * 50)
        try:
            for _ in range(2_000):
                if codec.unpack(codec.pack(document)) != document:
                    failures.append(f"{word!r}: another document came back")
                    return
        except Exception as exc:  # shared coders: "Data corruption detected"
            failures.append(f"{word!r}: {exc}")

    threads = [threading.Thread(target=work, args=(w,)) for w in (b"a", b"b", b"c", b"d")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_the_dictionary_makes_a_typical_state_small() -> None:
    assert len(StateCodec(DICTIONARY).pack(DICTIONARY)) < len(StateCodec().pack(DICTIONARY)) / 4


def _resident_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_held_state_costs_its_packed_size_not_the_compressors_buffer() -> None:
    """A million held cases must fit in memory: 100,000 packed states of about 40 bytes
    cost a few MiB, not the 300 MiB of 100,000 buffers of the document's size."""
    codec = StateCodec(DICTIONARY)
    before = _resident_mib()
    held = [codec.pack(DICTIONARY.replace(b"C-0000000000", b"C-%010d" % n)) for n in range(100_000)]
    grown = _resident_mib() - before
    assert sum(map(len, held)) < 10_000_000
    assert grown < 60, f"{grown:.0f} MiB for 100,000 packed states"
