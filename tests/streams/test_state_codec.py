"""The in-memory state codec: what it packs comes back whole, the same with or without priming."""

from __future__ import annotations

import zlib

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


def test_a_primed_compressor_packs_each_document_as_a_fresh_one_would() -> None:
    """Each pack starts from the primed dictionary, not from what the previous one left."""
    codec = StateCodec(DICTIONARY)
    documents = [DICTIONARY.replace(b"general", word) for word in (b"billing", b"vip", b"x" * 40)]
    for document in documents * 2:
        fresh = zlib.compressobj(1, zdict=DICTIONARY)
        assert codec.pack(document) == fresh.compress(document) + fresh.flush()


def test_the_dictionary_makes_a_typical_state_small() -> None:
    assert len(StateCodec(DICTIONARY).pack(DICTIONARY)) < len(StateCodec().pack(DICTIONARY)) / 4
