"""Spreading independent tasks over a Dask distributed cluster (``--scheduler``).

``distributed`` is an optional dependency (``pip install 'selfdenoise[zarr]'``), imported when a cluster is
asked for. Tasks must be importable functions of plain arguments (file paths, numbers, Zarr arrays)."""
from __future__ import annotations

from contextlib import contextmanager

from .errors import InputError, MissingDependencyError

#: seconds to wait for a remote scheduler before giving up
CONNECT_TIMEOUT = 30


def _distributed():
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError("--scheduler needs dask.distributed: pip install 'selfdenoise[zarr]'") from None
    return distributed


@contextmanager
def connect(scheduler):
    """A ``distributed.Client`` for ``scheduler``: ``local:N`` starts N worker processes on this machine (one
    thread each) for the duration; an address (``tcp://host:8786``) joins a running cluster; a ``Client`` is
    used as it is (and left open)."""
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    text, cluster = str(scheduler), None
    workers = text.split(":", 1)[1] if text.startswith("local:") else None
    if workers is not None and not (workers.isdigit() and int(workers) > 0):
        raise InputError(f"--scheduler {text}: expected local:N (N worker processes) or a scheduler address")
    try:
        if workers is not None:
            cluster = distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                               dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"})
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(text, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise InputError(f"--scheduler {text}: cannot connect ({e})") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_tasks(client, fn, argument_lists: list[tuple]) -> list:
    """``[fn(*args) for args in argument_lists]``, one task each on the cluster's workers; results in order."""
    futures = [client.submit(fn, *args, pure=False) for args in argument_lists]
    return client.gather(futures)
