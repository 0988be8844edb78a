"""The long-lived heap of `driftbot run`, out of the garbage collector's sight once listed.

After the initial lists the service holds what it keeps for as long as it runs: the app
states, the watchers' digests of the fast path, the policy state, the modules. Python's
collector would walk all of it again at every collection of its oldest generation while the
changes come in, and a change allocates enough to trigger those often (at 1,000 production-size
Argo CD Applications about a sixth of the CPU per change went there). `gc.freeze` moves what
is alive then to a permanent generation, after one full collection so no garbage is kept;
objects in it are still freed when nothing refers to them. Then the C allocator is asked to
give back to the system what the lists (and, on a restart, the stored states read before them)
left free (`malloc_trim`, glibc; elsewhere nothing is done): freed memory is otherwise kept
by the process, and its resident size stays at the start-up peak.

Only for a process of its own: the freeze is process-wide, so tests that run services in
the test process leave it off.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable


async def freeze_when_listed(
    not_ready: Callable[[], list[str]],
    sleep: Callable[[float], Awaitable[None]],
    interval: float = 1.0,
) -> None:
    """Wait until every source has listed (`not_ready()` is empty), then freeze the heap."""
    while not_ready():
        await sleep(interval)
    gc.collect()
    gc.freeze()
    release_free_memory()


def release_free_memory() -> bool:
    """Give the C allocator's free memory back to the system (glibc's `malloc_trim(0)`);
    False where there is no such call (musl, macOS)."""
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True
