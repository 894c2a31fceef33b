"""Worker processes for CPU-bound work (parsing feeds, tagging a large burst).

A poll is one process on one core unless it asks for more: feedparser and the rule engine are pure
Python, so threads would not help them (the GIL), processes do.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from typing import Any, Callable


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


def soon(make: Callable[..., Any], *args) -> Future:
    """make(*args) -- a pool -- in a thread, at once. Starting worker processes takes a quarter of
    a second (the forkserver boots and imports what it preloads); the caller spends it sending
    requests or tagging the first parts itself instead of waiting. The result is None when no pool
    could be made for any reason: the work is then done in-process."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(make(*args))
        except Exception:
            future.set_result(None)

    try:
        threading.Thread(target=run, name="mentionwatch-pool", daemon=True).start()
    except RuntimeError:  # no thread to be had (a process limit): no processes either
        future.set_result(None)
    return future


def shutdown_soon(future: Future) -> None:
    """Shut the pool of `future` down without waiting for it to have started."""

    def close(done: Future) -> None:
        pool = done.result()
        if pool is None:
            return
        # Waited for in a thread of its own, not by the caller (the poll goes on) and not skipped:
        # a worker still booting when this process exits finds its queue's semaphore gone and
        # prints a traceback (cron mails it). The interpreter joins this thread before it exits.
        try:
            threading.Thread(target=pool.shutdown, kwargs={"wait": True, "cancel_futures": True},
                             name="mentionwatch-pool-close").start()
        except RuntimeError:  # no thread to be had: let it go as before
            pool.shutdown(wait=False, cancel_futures=True)

    future.add_done_callback(close)
