"""Worker processes that die with their parent.

A process pool's workers outlive a parent killed with ``kill -9`` (the pool's own
shutdown never runs) and would keep writing parts into the store for as long as
their queue lasts. :func:`worker_pool` starts every worker with
:func:`die_with_parent`: on Linux the kernel sends the worker ``SIGKILL`` the moment
its parent dies (``prctl(PR_SET_PDEATHSIG)``, see ``man 2 prctl``); elsewhere a daemon
thread polls ``os.getppid()`` every 0.2 s and ends the worker when the parent changed.

Each worker also limits BLAS/OpenMP to one thread (:mod:`threadpoolctl`): the pool already
runs one worker per core, and a multi-threaded BLAS in each of them oversubscribes the
cores (on the loaded 2-core project machine, the ``(n, 3) @ (3, 3)`` products of a plate's
CoP and moments took 30-100 ms with OpenBLAS's own threads against 0.2 ms on one). The
products are bit-identical either way (each row is one dot product). And each worker
allocates Arrow buffers with the system allocator (:func:`release_arrow_memory`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["die_with_parent", "release_arrow_memory", "worker_pool"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, /) -> None:
    """Make this process end as soon as process ``parent_pid`` (its parent) is gone.

    Call it first thing in a child. If the parent already died before the call
    (the child was re-parented), the child exits at once.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(
            target=_watch, args=(parent_pid,), daemon=True, name="cxlab-parent-watchdog"
        ).start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.2)
    os._exit(1)


def _start_worker(parent_pid: int, /) -> None:
    die_with_parent(parent_pid)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # for the worker's whole life: one worker per core already
    release_arrow_memory()


def release_arrow_memory() -> None:
    """Give this process's Arrow buffers to the system allocator, which returns freed
    memory to the operating system: pyarrow's default (mimalloc) keeps it, so a worker that
    builds, validates and writes a recording's tables one at a time still grew by every
    table (an ingest of an 11.5 MB C3D: RSS +75 MB in-process against +32 MB; the same
    speed on the ingest benchmark, 1.55-1.56 s against 1.58-1.65 s)."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def worker_pool(max_workers: int, /) -> ProcessPoolExecutor:
    """A :class:`~concurrent.futures.ProcessPoolExecutor` whose workers die with this process
    and run BLAS/OpenMP on one thread each."""
    return ProcessPoolExecutor(
        max_workers=max_workers, initializer=_start_worker, initargs=(os.getpid(),)
    )
