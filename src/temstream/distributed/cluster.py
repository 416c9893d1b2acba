"""A Dask client: a local cluster (``local[:N]``) or a running scheduler (``tcp://HOST:8786``)."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger(__name__)


def parse_cluster(spec: str) -> int:
    """Workers of a ``local[:N]`` cluster spec (``local`` = one per core).

    Raises
    ------
    ValueError
        Anything else, with what to write instead.
    """
    name, _, n = spec.partition(":")
    if name != "local":
        raise ValueError(f"--cluster {spec!r}: write local or local:N (N workers); for a "
                         "running cluster use --scheduler tcp://HOST:8786")
    if not n:
        return max(1, len(os.sched_getaffinity(0)))
    try:
        workers = int(n)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ValueError(f"--cluster {spec!r}: N must be a whole number >= 1")
    return workers


@contextmanager
def dask_client(cluster: str | None = None, scheduler: str | None = None, *,
                client=None) -> Iterator:
    """A ``distributed.Client`` for the duration of a ``with`` block.

    Parameters
    ----------
    cluster : str, optional
        ``local`` or ``local:N``: a cluster of N worker processes with one thread each on
        this machine, bound to 127.0.0.1, closed at the end.
    scheduler : str, optional
        The address of a running scheduler (``tcp://HOST:8786``); left running.
    client : distributed.Client, optional
        Use this one (left open).
    """
    if client is not None:
        yield client
        return
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("--cluster and --scheduler need Dask distributed: pip install "
                         "'temstream[dask]'") from None
    if scheduler:
        with Client(scheduler, timeout="30s") as c:
            yield c
        return
    workers = parse_cluster(cluster or "local")
    quiet = logging.getLogger().getEffectiveLevel() > logging.INFO  # `temstream -v` shows them
    dlog = logging.getLogger("distributed")
    level = dlog.level
    if quiet:  # also "worker still alive after 4 s, killing" at shutdown on a busy machine
        dlog.setLevel(logging.ERROR)
    try:
        with _local_client(workers, logging.ERROR if quiet else False) as c:
            yield c
    finally:
        dlog.setLevel(level)


@contextmanager
def _local_client(workers: int, silence_logs) -> Iterator:
    from distributed import Client, LocalCluster

    # one thread per worker: the stages run their own threads, and a torch or ONNX Runtime
    # model uses the worker's cores; its web pages (if bokeh is installed) on a free loopback port
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      silence_logs=silence_logs) as lc, Client(lc) as c:
        log.info("local Dask cluster of %d workers at %s", workers, lc.scheduler_address)
        yield c
