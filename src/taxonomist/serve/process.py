"""Settings of the server process that the libraries would otherwise get wrong for a threaded server."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

from threadpoolctl import threadpool_limits

M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


def tune_for_serving() -> bool:
    """Requests run on the event loop, each project's ranking on a thread of its own (batching.py), evidence
    and the store's writes on Starlette's pool (40 threads), so:

    - BLAS keeps to one thread: its threads on top of the requests' only fight for the same cores (batch docs/s
      through the API 555-1,179 with them, 3,185-4,312 without, on 2 busy cores, ranking then on the request
      threads; bench/serve_load.py);
    - glibc keeps at most MALLOC_ARENAS malloc arenas: one per thread holds freed memory it never gives back
      (foldoc, 40 threads, 20,000 single-document suggests in-process: RSS +16% with glibc's default, +6% with 2).
    Called before the first request thread starts. Returns whether the arenas are bounded (not on a libc
    without mallopt)."""
    threadpool_limits(1)
    libc_name = ctypes.util.find_library("c")
    try:
        return bool(libc_name) and ctypes.CDLL(libc_name).mallopt(M_ARENA_MAX, MALLOC_ARENAS) == 1
    except (OSError, AttributeError):  # not glibc: its allocator has no such knob
        return False


def freeze_heap() -> None:
    """Moves every object alive now (the models just loaded) out of the garbage collector's sight: a full
    collection walked every object of the models while requests waited (p99 under 50 clients 147 ms with
    it, 30 ms frozen; bench/serve_load.py, 1,000 labels). Called once models are loaded or reloaded; a model
    replaced later is freed by reference counting, though cycles within it stay in memory."""
    gc.collect()
    gc.freeze()
