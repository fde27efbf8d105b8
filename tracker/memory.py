"""What a process of the tracker asks of glibc's allocator: few arenas.

glibc gives each thread that allocates its own malloc arena (up to eight per core) and keeps there what another
thread freed: a backfill's prefetch threads held tens of MB so. With one arena a 10,000-record backfill peaked at
146 MB instead of 170 and a 50,000-record one at 151 MB instead of 211 (BENCHMARKS.md, backfill); Python's own
allocator serves small objects under the interpreter lock whatever the arenas. Elsewhere than glibc it is a no-op.
"""

from __future__ import annotations

import os
import sys

MALLOC_ARENAS = 1
M_ARENA_MAX = -8  # glibc's malloc.h


def _glibc_function(name: str):
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # a C library without it (musl has no arenas to hold)
        return None


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Hold glibc's malloc to `arenas` arenas, before any thread starts (not where MALLOC_ARENA_MAX says otherwise)."""
    mallopt = _glibc_function("mallopt") if "MALLOC_ARENA_MAX" not in os.environ else None
    if mallopt is not None:
        mallopt(M_ARENA_MAX, arenas)


__all__ = ["limit_malloc_arenas"]
