"""What a restore allocated and freed goes back to the system, not only to the allocator."""

from __future__ import annotations

from metricsio.malloc_release import release_free_memory


def test_freed_blocks_between_live_ones_are_returned_to_the_system() -> None:
    # a restore's pattern: blocks malloc serves (over pymalloc's 512 bytes), most of them
    # transient, interleaved with survivors that keep the heap from shrinking at its top
    blocks = [bytes(2048) + bytes([n % 256]) for n in range(60_000)]
    survivors = blocks[::50]
    del blocks
    assert release_free_memory() is True  # glibc's malloc_trim gave pages back
    assert len(survivors) == 1_200
