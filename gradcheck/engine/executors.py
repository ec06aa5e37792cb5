"""Executors named by options: a pool of worker processes, or a dask scheduler.

``workers=N`` (``--workers N``) runs independent groups of forward passes on a
:class:`~concurrent.futures.ProcessPoolExecutor` of ``N`` processes; ``scheduler=ADDRESS``
(``--scheduler ADDRESS``) on the workers of a running ``dask.distributed`` scheduler,
through a ``Client`` (``pip install 'gradcheck[distributed]'``). Both are made once per
process and kept for the checks that follow (a pytest run, a CLI run over many layers
would otherwise pay the start-up of a pool per check), and shut down at exit.
"""

from __future__ import annotations

import atexit
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from gradcheck.errors import UsageError

__all__ = ["executor_for", "shutdown"]

_POOLS: dict[int, ProcessPoolExecutor] = {}
_CLIENTS: dict[str, Any] = {}


def executor_for(
    executor: Executor | None, workers: int | None, scheduler: str | None
) -> Executor | None:
    """The executor a check runs its independent work on (None: serially).

    ``executor`` is the user's own; otherwise one made from ``workers`` or ``scheduler``
    (the options allow at most one of the three).

    Raises
    ------
    UsageError
        When ``scheduler`` is given but ``dask.distributed`` is not installed, or the
        scheduler cannot be reached.
    """
    if executor is not None:
        return executor
    if workers is not None:
        pool = _POOLS.get(workers)
        if pool is None or getattr(pool, "_broken", False):
            pool = _POOLS[workers] = ProcessPoolExecutor(max_workers=workers)
        return pool
    if scheduler is not None:
        client = _CLIENTS.get(scheduler)
        if client is None or client.status != "running":
            client = _CLIENTS[scheduler] = _connect(scheduler)
        return client  # a distributed.Client is an Executor
    return None


def _connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(
            f"scheduler={address!r} needs dask.distributed: pip install 'gradcheck[distributed]'."
        ) from None
    try:
        return Client(address, timeout="10s", set_as_default=False)
    except OSError as error:
        raise UsageError(
            f"cannot reach the dask scheduler at {address!r} ({error}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, or leave --scheduler out."
        ) from None


@atexit.register
def shutdown() -> None:
    """Shut down the pools and clients made here (at exit, or when a test wants to)."""
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()
