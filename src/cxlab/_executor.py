"""One executor for the per-file work of ingest and features: a process pool or a Dask cluster.

``make_executor(jobs)`` is a :class:`concurrent.futures.ProcessPoolExecutor` whose workers die
with their parent (:func:`cxlab._workers.worker_pool`);
``make_executor(jobs, scheduler="tcp://host:8786")`` is the ``concurrent.futures`` face of a
Dask distributed client (``Client.get_executor()``), and ``scheduler="local"`` starts a
``LocalCluster`` of ``jobs`` single-threaded worker processes for the run. Callers submit,
map and wait on futures the same way whichever they get, so one code path serves both.

Dask is the optional extra ``cxlab[dask]``; it is imported only when a scheduler is asked for.
Workers open the store and the raw files by the paths the parent gives them, so on a remote
cluster both must be on a filesystem every worker mounts at the same path.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from cxlab._check import ConfigError, message
from cxlab._workers import worker_pool

__all__ = ["is_worker_crash", "make_executor"]

_FIX = (
    "pass the address `dask scheduler` prints (tcp://HOST:PORT), or --scheduler local to "
    "start a cluster on this machine"
)


@contextmanager
def make_executor(
    jobs: int, /, *, scheduler: str | None = None, connect_timeout_s: float = 10.0
) -> Iterator[Executor]:
    """Open the executor that runs one run's per-file tasks, and close it afterwards.

    Parameters
    ----------
    jobs : int
        Worker processes of the local pool, or of the ``LocalCluster`` when
        ``scheduler="local"``; ignored for a remote scheduler (its workers are its own).
    scheduler : str, optional
        ``None`` (a local process pool), ``"local"`` (a Dask ``LocalCluster``) or the address
        of a running Dask scheduler such as ``"tcp://10.0.0.5:8786"``.
    connect_timeout_s : float
        How long to wait for a remote scheduler before giving up, in seconds.

    Yields
    ------
    concurrent.futures.Executor
        ``submit``/``map`` return futures that ``concurrent.futures.as_completed`` accepts.

    Raises
    ------
    ConfigError
        ``jobs`` < 1; Dask is not installed; the scheduler cannot be reached at ``scheduler``.
        The message names ``--scheduler``, the address and the fix.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(message("must be a positive integer", field="jobs", value=jobs))
    if scheduler is None:
        with worker_pool(jobs) as pool:  # workers die with this process
            yield pool
        return
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ConfigError(
            message(
                "is not a Dask scheduler address", field="--scheduler", value=scheduler, fix=_FIX
            )
        )
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            message(
                "needs Dask, which is not installed",
                field="--scheduler",
                value=scheduler,
                fix="pip install 'cxlab[dask]' (or drop --scheduler)",
            )
        ) from None
    # readers may start child processes; a daemonic worker process could not
    with dask.config.set({"distributed.worker.daemon": False}):
        if scheduler.strip() == "local":
            # a cluster of our own: task failures reach us through the futures, so its
            # shutdown chatter (heartbeats to a closed scheduler) is not shown
            cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
            )
            client = Client(cluster)
        else:
            cluster = None
            # The error is raised outside the except clauses, after a collection: a Client
            # whose __init__ failed is still referenced by the caught exception's traceback,
            # and if its __del__ ran later on another thread (a thread started by the next
            # Client, inside its event-loop lock), close() would wait on that lock forever.
            failed = None
            try:
                client = Client(scheduler.strip(), timeout=connect_timeout_s)
            except (ValueError, TypeError):  # the scheme, host or port does not parse
                failed = "is not a Dask scheduler address"
            except OSError:
                failed = f"no Dask scheduler answered within {connect_timeout_s:g} s"
            if failed is not None:
                gc.collect()  # the half-made Client is finalised here, on this thread
                raise ConfigError(message(failed, field="--scheduler", value=scheduler, fix=_FIX))
    try:
        # pure=False: two identical tasks are still two runs (dask would otherwise merge them)
        with client.get_executor(pure=False) as ex:
            yield ex
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def is_worker_crash(exc: BaseException, /) -> bool:
    """Whether ``exc`` says a worker process died while running a task.

    A dead worker breaks a local pool (``BrokenProcessPool``); Dask instead retries the task on
    another worker and, after ``distributed.scheduler.allowed-failures`` deaths, raises
    ``KilledWorker``. Callers treat both the same way: retry the task alone and quarantine it.
    """
    if isinstance(exc, BrokenProcessPool):
        return True
    return type(exc).__name__ == "KilledWorker" and type(exc).__module__.startswith("distributed")
