"""What a process of the tracker asks of its allocators: few glibc arenas, and fewer runs of Python's collector.

glibc gives each thread that allocates its own malloc arena (up to eight per core) and keeps there what another
thread freed: a backfill's prefetch threads held tens of MB so. With one arena a 10,000-record backfill peaked at
146 MB instead of 170 and a 50,000-record one at 151 MB instead of 211 (BENCHMARKS.md, backfill); Python's own
allocator serves small objects under the interpreter lock whatever the arenas. Elsewhere than glibc it is a no-op.

Python's cyclic collector looks at the youngest objects every 700 new ones and at every object the process holds
every 100 of those. A backfill makes a batch's papers (tens of thousands of objects) at a time: a 10,000-record
ingest ran 1,458 young collections, 132 middle and 12 full ones, each full one over everything the imported
libraries hold, for 1.9 s of the collector's CPU time out of 19 s. With the thresholds below: 122, 7 and none, for
0.7 s (benchmark 6's parse + store through the prefetch pipeline, timed by gc.callbacks). A young generation of
50,000 saved 0.3 s more, but the web app then held 50 MB more under load (benchmark 14).
"""

from __future__ import annotations

import gc
import os
import sys

MALLOC_ARENAS = 1
M_ARENA_MAX = -8  # glibc's malloc.h
COLLECTOR_THRESHOLDS = (10_000, 20, 100)  # Python's are (700, 10, 10)


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


def collect_less() -> None:
    """Run Python's cyclic collector less often (COLLECTOR_THRESHOLDS): it still frees every cycle, later."""
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def tune_allocators() -> None:
    """What every process of the tracker starts with: `limit_malloc_arenas` and `collect_less`."""
    limit_malloc_arenas()
    collect_less()


__all__ = ["COLLECTOR_THRESHOLDS", "collect_less", "limit_malloc_arenas", "tune_allocators"]
