"""Worker processes for CPU-bound work (parsing feeds, tagging a large burst).

A poll is one process on one core unless it asks for more: feedparser and the rule engine are pure
Python, so threads would not help them (the GIL), processes do.
"""

from __future__ import annotations

import os


def pool(max_workers: int = 4, initializer=None, initargs: tuple = (), preload: list[str] | None = None):
    """A process pool with up to `max_workers` (never more than the cores), or None on one core,
    where the work is faster done in-process than shipped to a process that shares the core."""
    cores = os.cpu_count() or 1
    if cores < 2:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(cores, max_workers)
    # forkserver: the workers never inherit the poll's event loop, threads or open database. The
    # server imports `preload` once, when it starts (the first pool of a process starts it); each
    # worker is a fork of it instead of a fresh interpreter importing feedparser or the rules.
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(preload)
    try:
        executor = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=initializer,
                                       initargs=initargs)
        # Start the workers now (the pool would start one at the first task): they boot while the
        # caller waits on the network, not when the first response is there to be handled.
        for _ in range(workers):
            executor.submit(os.getpid)
    except (OSError, RuntimeError, NotImplementedError):
        # No processes to be had here (a sandbox without /dev/shm, a process limit): the caller
        # does the work in-process, only slower.
        return None
    return executor
