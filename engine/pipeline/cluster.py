"""Scale-out of ``bizra run`` with Dask: ``--cluster local:N`` or ``--cluster tcp://HOST:PORT``.

Each chunk is one task, :func:`engine.pipeline.chunks.check_slice`: the worker reads its own slice
of the attestations file (so the file must be at the same path on every worker: a shared
filesystem or a copy) and sends back the chunk's row codes and compact vote columns; only the
validator table travels to the workers, once. The driver checkpoints each result as it
arrives and builds the BlockGraph, exactly as a local run does, so the outputs are
byte-identical. A worker that dies mid-task is Dask's to handle: the scheduler reruns its tasks
on the workers that are left.
"""
from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

from engine.model.errors import BizraError
from engine.pipeline.chunks import ChunkResult, check_slice
from engine.tables.validators import ValidatorTable
from engine.verification.api import usable_cpus

__all__ = ["CONNECT_TIMEOUT", "chunk_results", "open_cluster", "parse_cluster"]

CONNECT_TIMEOUT = "10s"  # to reach a tcp:// scheduler before giving up with one line


def parse_cluster(spec: str) -> tuple[str, int | str]:
    """``local:N`` -> ("local", N); ``tcp://HOST:PORT`` -> ("tcp", the address); else BizraError."""
    if spec.startswith("local:"):
        n = spec[len("local:"):]
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise BizraError(f"--cluster {spec}: local:N needs a worker count N in 1..256")
        return "local", int(n)
    if spec.startswith("tcp://") and ":" in spec[len("tcp://"):]:
        return "tcp", spec
    raise BizraError(f"--cluster {spec}: expected local:N or tcp://HOST:PORT")


@contextlib.contextmanager
def open_cluster(spec: str, threads: int | None) -> Iterator[tuple[object, int | None]]:
    """A Dask client for ``spec`` and the verify threads each task should use.

    ``local:N`` starts N single-task worker processes on this machine, each verifying with
    CPUs/N threads (or ``threads``); ``tcp://`` tasks use ``threads`` or their worker's own
    BIZRA_THREADS/CPU count.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BizraError("--cluster needs Dask: pip install 'bizra[dist]'") from None
    kind, where = parse_cluster(spec)
    if kind == "local":
        per_task = threads or max(1, usable_cpus() // int(where))
        with LocalCluster(n_workers=int(where), threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            yield client, per_task
        return
    try:
        client = Client(where, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise BizraError(f"--cluster {where}: cannot connect to the Dask scheduler ({exc})") from None
    with client:
        yield client, threads


def chunk_results(client, todo: list[tuple[int, int, int]], path: Path, validators: ValidatorTable,
                  threads: int | None, backend: str | None) -> Iterator[tuple[int, ChunkResult]]:
    """(chunk index, result) for each (index, first row, rows) of ``todo``, in completion order."""
    from distributed import as_completed

    if not todo:
        return
    run = uuid.uuid4().hex  # task keys unique per job, on a scheduler other jobs share
    [table] = client.scatter([validators], broadcast=True)  # one object: a NamedTuple would scatter field by field
    futures = {client.submit(check_slice, str(Path(path).resolve()), lo, rows, table, threads=threads,
                             backend=backend, key=f"bizra-chunk-{run}-{i}", pure=False): i for i, lo, rows in todo}
    for future in as_completed(futures):
        yield futures[future], future.result()
