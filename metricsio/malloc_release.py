"""Give the C allocator's free pages back to the system after a restore.

A restore allocates its held states between transient objects (the consumer's records,
the deadlines read from the headers, the lists the index is built from). Once those are
freed, glibc's malloc keeps their pages for reuse, so the process's resident memory stays
at the restore's peak: measured with 1,000,000 cases, 15-170 MiB more than it holds
(`bench/RESULTS.md`, "SLA timers"). `malloc_trim(0)` returns every whole free page,
wherever it is in the heap, to the system; it takes a few milliseconds and changes
nothing Python holds. Elsewhere (another C library, another platform) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["release_free_memory"]


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, if this process's C library has it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system; True if some were returned."""
    return _TRIM is not None and bool(_TRIM(0))
