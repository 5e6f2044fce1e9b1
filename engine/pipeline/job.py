"""The ``bizra run`` batch job: a dataset in, verified rows, head, finality and evidence out.

Pipeline (every row of the input is accounted for in the output):

  1. inputs: the validator table (keys admitted: engine.tables.validators) and the blocks
     (exactly one genesis, no zero or reused hash, no cycle, heights consistent:
     engine.tables.blocks) are read whole and checked; the attestations file's schema, row
     count (footer) and binary widths (first rows) are checked before any signature is
     verified (engine.tables.attestations);
  2. chunks of ``chunk_rows`` rows (engine.pipeline.chunks, here or on Dask via
     engine.pipeline.cluster): the row checks of engine.pipeline.row_checks, first failing check
     wins: ``malformed`` > ``unknown_validator`` > ``key_mismatch`` > ``bad_signature``
     (verify_many over the chunk, all threads). Rows passing all four are votes: (validator,
     epoch, target, id = SHA-256(body)). Each finished chunk is checkpointed in OUT/.work
     (engine.pipeline.checkpoint), so a rerun after a crash resumes from there;
  3. after the last chunk, the vote-level reasons (engine.pipeline.vote_reasons): ``duplicate``,
     ``equivocation``, ``orphan_target``, ``superseded``, ``ok``; ``counted`` is True exactly for
     ``ok``;
  4. outputs (engine.pipeline.outputs) under temp names in OUT/.work, renamed into OUT only after
     the row count check (report.json last): attestations.parquet, blocks.parquet,
     equivocations.parquet, report.json; then OUT/.work is removed.

One writer per OUT: everything that touches OUT happens under an exclusive lock on OUT/.lock
(engine.pipeline.out_lock); a second run, ``--restart`` included, stops at once naming the
holder's pid. Any OS error while writing (a full disk, a read-only filesystem, no permission)
is one ``OutputError`` naming the path being written, and leaves no temp file behind.

The exact meaning of every reason is in docs/semantics.md, "Row reasons of the batch job".
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from engine.consensus.blockgraph import BlockGraph
from engine.model.errors import BizraError, InputError, JobInputError, KeyAdmissionError, OutputError
from engine.pipeline import out_lock
from engine.pipeline.checkpoint import Checkpoint
from engine.pipeline.chunks import check_slice
from engine.pipeline.outputs import REASON_DTYPE, REASONS, attestations_frame, blocks_frame, equivocations_frame
from engine.pipeline.progress import Progress
from engine.pipeline.row_checks import VOTE
from engine.pipeline.vote_reasons import feed_votes, vote_reasons
from engine.tables.attestations import check_attestations_file
from engine.tables.blocks import load_blocks
from engine.tables.parquet import os_reason
from engine.tables.validators import ValidatorTable, load_validator_table
from engine.verification.api import backend_name, memory_after_verify, resolve_threads, use_heap_scratch, warm_up

__all__ = ["JobInputError", "JobReport", "REASON_DTYPE", "add_cli", "cmd_run", "run_job"]


@dataclasses.dataclass(frozen=True)
class JobReport:
    """What run_job wrote; ``report`` is the content of OUT/report.json."""

    out_dir: Path
    rows: int
    counts: dict[str, int]
    head: str | None
    finalized_tip: str | None
    finalized_height: int
    rows_per_s: float
    report: dict


# ---- inputs ------------------------------------------------------------------------------


def _inputs(data_dir, validators, blocks, attestations) -> dict[str, Path]:
    paths = {}
    for name, given in (("validators", validators), ("blocks", blocks), ("attestations", attestations)):
        if given is None and data_dir is None:
            raise JobInputError(f"{name}: no path given (pass data_dir or {name}=PATH)")
        paths[name] = Path(given) if given is not None else Path(data_dir) / f"{name}.parquet"
    return paths


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):  # once per MiB, not per row
            h.update(block)
    return h.hexdigest()


def _load_validators(path: Path) -> ValidatorTable:
    try:
        return load_validator_table(path)
    except (InputError, KeyAdmissionError) as exc:
        raise JobInputError(str(exc)) from None


def _load_blocks(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        return load_blocks(path)
    except InputError as exc:
        raise JobInputError(str(exc)) from None


def _versions() -> dict[str, str]:
    import nacl
    import numba

    return {"bizra": importlib.metadata.version("bizra"), "numba": numba.__version__, "numpy": np.__version__,
            "polars": pl.__version__, "pynacl": nacl.__version__}


# ---- the job -------------------------------------------------------------------------------


def run_job(data_dir=None, out_dir=None, *, validators=None, blocks=None, attestations=None,
            threads: int | None = None, bps: int = 6667, chunk_rows: int = 65536,
            quiet: bool | None = None, progress: Callable[[int, int], None] | None = None,
            backend: str | None = None, cluster: str | None = None, restart: bool = False) -> JobReport:
    """Run the batch job over a dataset directory; see the module docstring.

    ``quiet``: True no progress bar, False always, None only on a terminal; ``progress``: an
    optional ``callback(rows_done, rows_total)`` called after every chunk; ``cluster``: None
    (this process), ``local:N`` or ``tcp://HOST:PORT`` (engine.pipeline.cluster); ``restart``: drop
    the checkpoint in OUT/.work instead of resuming from it. Example::

        r = run_job("data", "out", threads=2)
        r.counts["ok"], r.head
    """
    t_start = time.perf_counter()
    if out_dir is None:
        raise JobInputError("out: no output directory given")
    if chunk_rows < 1:
        raise JobInputError(f"chunk_rows: must be >= 1, got {chunk_rows}")
    if not 5000 < int(bps) <= 10000:
        raise JobInputError(f"bps: must satisfy 5000 < bps <= 10000, got {bps}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise JobInputError(f"{out}: exists and is not a directory")
    if cluster is not None:
        from engine.pipeline.cluster import parse_cluster
        parse_cluster(cluster)  # a bad spec fails before any work
    nthreads = resolve_threads(threads)
    verifier = backend_name(backend)
    use_heap_scratch()  # a job owns its process's verify threads (see use_heap_scratch)
    paths = _inputs(data_dir, validators, blocks, attestations)
    stages: dict[str, float] = {"jit": _compile_kernels(backend)}
    t = time.perf_counter()
    table = _load_validators(paths["validators"])
    hashes, parents, heights = _load_blocks(paths["blocks"])
    n = check_attestations_file(paths["attestations"], JobInputError)
    graph = BlockGraph(table.weights, bps=int(bps), genesis=hashes[np.flatnonzero(~parents.any(axis=1))[0]].tobytes())
    graph.add_blocks(hashes, parents, heights)
    rejected = graph.rejected_blocks()
    if len(rejected["hash"]):
        raise JobInputError(f"{paths['blocks']}: block {rejected['hash'][0].tobytes().hex()} rejected "
                            f"({rejected['reason'][0]}, {len(rejected['hash'])} rejected blocks)")
    input_sha = {k: _sha256_file(p) for k, p in paths.items()}
    with _os_errors(out), out_lock.hold(out):  # one writer per OUT, from its checkpoint to its cleanup
        return _run_locked(out, paths=paths, input_sha=input_sha, table=table, graph=graph, n=n, stages=stages,
                           t=t, t_start=t_start, nthreads=nthreads,
                           threads=threads, bps=bps, chunk_rows=chunk_rows, verifier=verifier, quiet=quiet,
                           progress=progress, backend=backend, cluster=cluster, restart=restart)


def _run_locked(out, *, paths, input_sha, table, graph, n, stages, t, t_start, nthreads, threads, bps, chunk_rows,
                verifier, quiet, progress, backend, cluster, restart) -> JobReport:
    """The part of run_job that writes to OUT: called with OUT's lock held."""
    with _os_errors(out / ".work"):
        checkpoint = Checkpoint(out, {"inputs": input_sha, "rows": n, "bizra": _versions()["bizra"],
                                      "params": {"bps": int(bps), "chunk_rows": int(chunk_rows), "backend": verifier}},
                                restart=restart)
    stages["inputs"] = time.perf_counter() - t

    t = time.perf_counter()
    chunks = [(i, lo, min(chunk_rows, n - lo)) for i, lo in enumerate(range(0, n, chunk_rows))]
    # Only the per-row columns stay in memory while chunks run; each chunk's vote columns stay
    # in its checkpoint file until the graph stage reads them back one chunk at a time.
    codes = np.empty(n, np.uint8)
    sig_valid = np.empty(n, bool)
    stats = np.zeros((len(chunks), 3))  # verified, verify seconds, read seconds
    todo = []
    for i, lo, rows in chunks:
        saved = checkpoint.load_rows(i)
        if saved is not None and len(saved[0]) == rows:
            codes[lo:lo + rows], sig_valid[lo:lo + rows], stats[i] = saved
        else:
            todo.append((i, lo, rows))
    resumed, done = len(chunks) - len(todo), n - sum(rows for _, _, rows in todo)
    bar = Progress(n, "run", enabled=None if quiet is None else not quiet)
    # On a cluster the workers size their own thread pools unless --threads was given.
    task_threads = nthreads if cluster is None else threads
    with bar, _chunk_source(cluster, todo, paths["attestations"], table, task_threads, backend) as source:
        bar.update(done)
        for i, r in source:  # once per chunk, in completion order
            with _os_errors(checkpoint.chunk_path(i)):
                checkpoint.save(i, r)
            lo = chunks[i][1]
            codes[lo:lo + len(r.code)], sig_valid[lo:lo + len(r.code)], stats[i] = r.code, r.sig_valid, r.stats()
            done += len(r.code)
            bar.update(len(r.code))
            if progress is not None:
                progress(done, n)
    verified, verify_s = int(stats[:, 0].sum()), float(stats[:, 1].sum())
    stages["read"] = float(stats[:, 2].sum())
    stages["verify"] = verify_s
    stages["check"] = max(time.perf_counter() - t - stages["read"] - verify_s, 0.0)

    with memory_after_verify():  # past verification, big arrays go back to the OS when freed
        t = time.perf_counter()
        is_vote = codes == VOTE
        with _os_errors(checkpoint.dir):
            votes = feed_votes(graph, checkpoint, len(chunks), int(np.count_nonzero(is_vote)))
        codes[is_vote] = vote_reasons(graph, votes)
        del votes, is_vote
        head, tip = graph.head(), graph.finalized_tip()
        stages["graph"] = time.perf_counter() - t

        t = time.perf_counter()
        names = ("attestations.parquet", "blocks.parquet", "equivocations.parquet", "report.json")
        tmp = {name: checkpoint.temp(name) for name in names}
        try:
            with _os_errors(out / "attestations.parquet"):
                attestations_frame(paths["attestations"], codes, sig_valid).sink_parquet(tmp["attestations.parquet"])
                written = pl.scan_parquet(tmp["attestations.parquet"]).select(pl.len()).collect().item()
            if written != n:
                raise BizraError(f"{out}: wrote {written} attestation rows, expected {n}")
            with _os_errors(out / "blocks.parquet"):
                blocks_frame(graph).write_parquet(tmp["blocks.parquet"])
            evidence = equivocations_frame(graph)
            with _os_errors(out / "equivocations.parquet"):
                evidence.write_parquet(tmp["equivocations.parquet"])
            stages["write"] = time.perf_counter() - t
            wall = time.perf_counter() - t_start
            counts = {r.value: int(c) for r, c in zip(REASONS, np.bincount(codes, minlength=len(REASONS)))}
            if sum(counts.values()) != n:  # every row has exactly one reason
                raise BizraError(f"{out}: {sum(counts.values())} reasons for {n} rows")
            fin = graph.finalized_flags()
            tip_height = int(graph.heights()[fin].max()) if fin.any() else 0
            report = {
                "head": head.hex() if head else None, "finalized_tip": tip.hex() if tip else None,
                "finalized_height": tip_height, "counts": counts,
                "safety_faults": [{"epoch": f.epoch, "candidate": f.candidate.hex(), "finalized_tip": f.finalized_tip.hex()}
                                  for f in graph.safety_faults()],
                "totals": {"rows": n, "signature_valid": int(sig_valid.sum()), "counted": counts["ok"],
                           "blocks": len(graph.block_hashes()), "orphan_blocks": len(graph.orphan_blocks()["hash"]),
                           "validators": table.count, "total_weight": int(table.weights.sum()),
                           "counted_weight": int(graph.block_weights()[0]) if len(graph.block_hashes()) else 0,
                           "equivocations": len(evidence), "equivocators": len(graph.equivocators())},
                "seconds": {**{k: round(v, 6) for k, v in stages.items()}, "total": round(wall, 6)},
                "verify": {"rows": verified, "seconds": round(verify_s, 6),
                           "rows_per_s": round(verified / verify_s, 1) if verify_s > 0 else None,
                           "threads": nthreads, "backend": verifier},
                # one-time Numba compilation (or cache load) is reported apart, as seconds.jit
                "rows_per_s": round(n / (wall - stages["jit"]), 1) if wall > stages["jit"] else None,
                "params": {"bps": int(bps), "chunk_rows": int(chunk_rows), "cluster": cluster},
                "checkpoint": {"chunks": len(chunks), "resumed_chunks": resumed},
                "versions": _versions(),
                # Relative to OUT, not to wherever the job was started, so a reader of report.json
                # finds the inputs from OUT alone, and OUT can move together with its data.
                "inputs": {k: {"path": os.path.relpath(os.path.abspath(p), os.path.abspath(out)),
                               "sha256": input_sha[k]} for k, p in paths.items()},
            }
            with _os_errors(out / "report.json"):
                tmp["report.json"].write_text(json.dumps(report, indent=2) + "\n")
                (out / "report.json").unlink(missing_ok=True)  # an older result must not pass for this one
            for name in names:  # report.json last: its presence means a complete result
                with _os_errors(out / name):
                    os.replace(tmp[name], out / name)
            with _os_errors(checkpoint.dir):
                checkpoint.clear()
        finally:
            for p in tmp.values():
                p.unlink(missing_ok=True)
    return JobReport(out, n, counts, report["head"], report["finalized_tip"], tip_height,
                     report["rows_per_s"] or 0.0, report)


@contextlib.contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    """An OSError (a full disk, a read-only filesystem, no permission), or a Polars error that
    wraps one, becomes one OutputError line naming ``path``, the file or folder being written."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"{path}: {os_reason(exc)}") from None
    except pl.exceptions.PolarsError as exc:
        if "os error" not in str(exc):
            raise
        raise OutputError(f"{path}: {os_reason(exc)}") from None


@contextlib.contextmanager
def _chunk_source(cluster, todo, path, validators, threads, backend):
    """(chunk index, ChunkResult) for every chunk of ``todo``: here, or on a Dask cluster."""
    if cluster is None:
        yield ((i, check_slice(path, lo, rows, validators, threads=threads, backend=backend)) for i, lo, rows in todo)
        return
    from engine.pipeline.cluster import chunk_results, open_cluster
    with open_cluster(cluster, threads) as (client, per_task):
        yield chunk_results(client, todo, path, validators, per_task, backend)


def _compile_kernels(backend: str | None) -> float:
    """Compile the verify and BlockGraph kernels on tiny inputs; seconds spent."""
    t = time.perf_counter()
    warm_up(backend)
    tiny = BlockGraph(np.array([1], np.int64))
    tiny.add_blocks([b"\x01" * 32], [bytes(32)])
    tiny.add_votes(np.array([0]), np.array([1]), [b"\x01" * 32])
    tiny.head()
    return time.perf_counter() - t


# ---- CLI -----------------------------------------------------------------------------------


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register ``bizra run`` on an argparse subparsers object; the command is ``cmd_run``."""
    p = subparsers.add_parser("run", help="verify a dataset and compute head, finality and evidence",
                              description="Check every attestation row, build the BlockGraph, write "
                              "OUT/attestations.parquet, blocks.parquet, equivocations.parquet and report.json. "
                              "Finished chunks are checkpointed in OUT/.work: after a crash or kill, the same "
                              "command resumes where it stopped and writes the same outputs.")
    p.add_argument("--data", type=Path, default=None, help="dataset directory (bizra generate output)")
    p.add_argument("--out", type=Path, required=True, help="output directory (created)")
    for name in ("validators", "blocks", "attestations"):
        p.add_argument(f"--{name}", type=Path, default=None, metavar="P", help=f"{name}.parquet (default DIR/{name}.parquet)")
    p.add_argument("--threads", type=int, default=None, help="verify threads (default: BIZRA_THREADS, else CPUs)")
    p.add_argument("--bps", type=int, default=6667, help="finality threshold in basis points (default 6667)")
    p.add_argument("--chunk-rows", type=int, default=65536, help="rows per chunk (default 65536)")
    p.add_argument("--cluster", default=None, metavar="SPEC",
                   help="run the chunks on Dask: local:N (N worker processes here) or tcp://HOST:PORT "
                   "(an existing scheduler; workers must see the input files at the same paths)")
    p.add_argument("--restart", action="store_true",
                   help="discard the checkpoint in OUT/.work instead of resuming from it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)
    return p


def cmd_run(args: argparse.Namespace) -> int:
    """``bizra run``: a short human summary on stdout; bad input is one stderr line, exit 2."""
    try:
        r = run_job(args.data, args.out, validators=args.validators, blocks=args.blocks,
                    attestations=args.attestations, threads=args.threads, bps=args.bps,
                    chunk_rows=args.chunk_rows, quiet=True if args.quiet else None,
                    cluster=args.cluster, restart=args.restart)
    except (BizraError, ValueError) as exc:  # ValueError: configuration (BIZRA_THREADS=abc, backend)
        print(f"bizra run: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unwritable OUT, a disk that filled up
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bizra run: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{k} {v:,}" for k, v in r.counts.items() if v)
    jit = r.report["seconds"]["jit"]
    print(f"head {r.head}\nfinalized height {r.finalized_height} (tip {r.finalized_tip})\n"
          f"{r.rows:,} rows: {counts}\n{r.rows_per_s:,.0f} rows/s -> {r.out_dir}"
          + (f"\n(plus {jit:.1f} s one-time Numba compilation, cached for next runs)" if jit >= 1 else ""))
    return 0
