"""bizra run on Dask (engine.pipeline.cluster): byte-identical to a local run, also with a killed worker; clear one-line errors for an unreachable scheduler or a bad spec; threads per task."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from engine.model.errors import BizraError
from engine.pipeline.job import run_job
from tests.pipeline.conftest import CHUNK
from tests.support.job_reference import chunk_files, same_outputs


def test_dask_local_cluster_is_byte_identical(dataset: Path, reference: Path, tmp_path: Path) -> None:
    r = run_job(dataset, tmp_path / "out", chunk_rows=CHUNK, quiet=True, cluster="local:2")
    assert r.report["params"]["cluster"] == "local:2"
    same_outputs(tmp_path / "out", reference)


def test_dask_killed_worker_still_byte_identical(dataset: Path, reference: Path, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        victim_pid = next(iter(client.run(os.getpid).values()))  # a worker process; its nanny restarts it
        errors: list[BaseException] = []

        def job() -> None:
            try:
                run_job(dataset, out, threads=1, chunk_rows=CHUNK, quiet=True, cluster=cluster.scheduler_address)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        t = threading.Thread(target=job)
        t.start()
        deadline = time.monotonic() + 120
        while chunk_files(out) < 10 and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert t.is_alive() and chunk_files(out) < 12_000 // CHUNK, "the job ended before a worker could be killed"
        os.kill(victim_pid, signal.SIGKILL)
        t.join(300)
        assert not t.is_alive() and not errors, errors
    same_outputs(out, reference)


def test_unreachable_scheduler_is_one_clear_error(dataset: Path, tmp_path: Path, monkeypatch) -> None:
    from engine.pipeline import cluster
    from engine.tooling.serve_process import free_port

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(BizraError, match="cannot connect to the Dask scheduler"):
        run_job(dataset, tmp_path / "o", chunk_rows=CHUNK, quiet=True, cluster=f"tcp://127.0.0.1:{free_port()}")


def test_bad_cluster_spec_is_one_clear_error(dataset: Path, tmp_path: Path) -> None:
    for spec in ("local:0", "local:x", "http://host:1", "tcp://nohost"):
        with pytest.raises(BizraError, match="--cluster"):
            run_job(dataset, tmp_path / "o", quiet=True, cluster=spec)
    assert not (tmp_path / "o").exists()


def test_cluster_workers_size_their_own_threads_unless_told(dataset: Path, tmp_path: Path, monkeypatch) -> None:
    """--threads reaches the cluster as given; without it the workers pick (local:N: CPUs / N),
    not the driver's own thread count."""
    from engine.pipeline import cluster

    seen = []

    class Stop(Exception):
        pass

    def fake_open_cluster(spec, threads):
        seen.append(threads)
        raise Stop

    monkeypatch.setattr(cluster, "open_cluster", fake_open_cluster)
    for given in (None, 3):
        with pytest.raises(Stop):
            run_job(dataset, tmp_path / f"o{given}", threads=given, chunk_rows=CHUNK, quiet=True, cluster="local:2")
    assert seen == [None, 3]


