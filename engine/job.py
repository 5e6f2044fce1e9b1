"""The ``bizra run`` batch job: a dataset in, verified rows, head, finality and evidence out.

Pipeline (issue 5; every row of the input is accounted for in the output):

  1. inputs: validators (keys admitted, DESIGN section 4) and blocks are read whole and checked
     (exactly one genesis, no zero or reused hash, no cycle, heights consistent); the
     attestations file's schema, row count (footer) and binary widths (first rows) are
     checked before any signature is verified;
  2. chunks of ``chunk_rows`` rows (engine.job_chunks, here or on Dask via engine.job_dask):
     per-row checks, first failing check wins: ``malformed`` > ``unknown_validator`` >
     ``key_mismatch`` > ``bad_signature`` (verify_many over the chunk, all threads). Rows
     passing all four are votes: (validator, epoch, target, id = SHA-256(body)). Each finished
     chunk is checkpointed in OUT/.work, so a rerun after a crash resumes from there;
  3. after the last chunk, vote-level reasons, first match wins:
     ``duplicate``     the same body (id) was an earlier vote row (DESIGN section 4: by body, never
                       by signature; an earlier row with the same body that failed a row check
                       does not make this one a duplicate);
     ``equivocation``  the validator is excluded from epoch X (BlockGraph.exclusion_epochs) and
                       the vote's epoch is >= X: both rows of the evidence pair and everything
                       the validator signed later;
     ``orphan_target`` the target is not an accepted block (never arrived, or waits for a parent);
     ``superseded``    anything else that is not the validator's counted vote in the final view:
                       an older epoch, a later row repeating the counted (epoch, target) with
                       another body, or a vote of an equivocator before its exclusion epoch
                       (counted in the views before X, not in the final one);
     ``ok``            the one row per counted validator carrying its latest vote (the first row
                       in input order among equal ones); ``counted`` is True exactly for these.
  4. outputs under temp names in OUT/.work, renamed into OUT only after the row count check
     (report.json last): attestations.parquet, blocks.parquet, equivocations.parquet,
     report.json; then OUT/.work is removed.

``signature_valid`` is a fact, not a reason: the signature verifies the body under the
*registered* key of the validator index read at the version-1 offset (so a validly signed
version-2 body is ``malformed`` with ``signature_valid`` True). It is False where widths are
wrong, the index is unknown, or the key is not the registered one.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from engine.attestation import ATTESTATION_SCHEMA, BINARY_WIDTHS, binary_column, binary_to_array
from engine.blockgraph import BlockGraph
from engine.dataset import read_blocks, read_validators
from engine.errors import BizraError, InputError, KeyAdmissionError, Reason, first_line
from engine.job_chunks import CODE, VOTE, Checkpoint, JobInputError, check_slice
from engine.progress import Progress
from engine.verify import backend_name, memory_after_verify, resolve_threads, warm_up

__all__ = ["JobInputError", "JobReport", "REASON_DTYPE", "add_cli", "cmd_run", "run_job"]

REASONS: tuple[Reason, ...] = tuple(Reason)
REASON_DTYPE = pl.Enum([r.value for r in REASONS])
_REQUIRED = ("body", "signature", "public_key")
_WIDTH_PROBE_ROWS = 65536
_MAX_VALIDATOR_INDEX = 1 << 24
_ZERO32 = bytes(32)


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


def _void(rows: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 -> (n,) V32, sortable and comparable as whole hashes (byte order)."""
    return np.ascontiguousarray(rows, dtype=np.uint8).view("V32").reshape(-1)


def _load_validators(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights by index, registered mask by index, registered key by index)."""
    try:
        df = read_validators(path)
    except (InputError, KeyAdmissionError) as exc:
        raise JobInputError(str(exc)) from None
    idx = df["index"].to_numpy().astype(np.int64)
    size = int(idx.max()) + 1 if len(idx) else 1  # at least one slot, so lookups need no branch
    if size > _MAX_VALIDATOR_INDEX:
        raise JobInputError(f"{path}: validator index {size - 1} too large (max {_MAX_VALIDATOR_INDEX - 1})")
    weights = np.zeros(size, np.int64)
    weights[idx] = df["weight"].to_numpy()
    registered = np.zeros(size, bool)
    registered[idx] = True
    keys = np.zeros((size, 32), np.uint8)
    keys[idx] = binary_to_array(df["public_key"], 32)
    return weights, registered, keys


def _load_blocks(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, parents, heights) after the structural checks that make a blocks file usable."""
    try:
        df = read_blocks(path)
    except InputError as exc:
        raise JobInputError(str(exc)) from None
    h = binary_to_array(df["hash"], 32)
    p = binary_to_array(df["parent"], 32)
    heights = df["height"].to_numpy()
    if len(heights) and int(heights.max()) >= 2**63:
        raise JobInputError(f"{path}: height {int(heights.max())} out of range")
    zero_hash = ~h.any(axis=1)
    if zero_hash.any():
        raise JobInputError(f"{path}: block with an all-zero hash (row {int(np.argmax(zero_hash))})")
    roots = np.flatnonzero(~p.any(axis=1))
    if len(roots) != 1:
        what = "no genesis block" if not len(roots) else f"{len(roots)} genesis blocks (two geneses)"
        raise JobInputError(f"{path}: {what}; expected exactly one block with an all-zero parent")
    keys = _void(h)
    order = np.argsort(keys, kind="stable")
    same = keys[order][1:] == keys[order][:-1]
    if same.any():
        row = int(order[1:][np.argmax(same)])
        raise JobInputError(f"{path}: duplicate block hash {h[row].tobytes().hex()} (row {row})")
    # Cycle check by pointer doubling: after ceil(log2 n) + 1 doublings every chain that ends
    # (at genesis or at a missing parent) has reached -1; a node still pointing somewhere lies on
    # or leads into a cycle. Runs log2(n) times over whole columns.
    pos = np.searchsorted(keys[order], _void(p))
    pos = np.minimum(pos, len(order) - 1)
    up = np.where(keys[order][pos] == _void(p), order[pos], -1)
    for _ in range(int(np.ceil(np.log2(max(len(up), 2)))) + 1):
        up = np.where(up >= 0, up[np.maximum(up, 0)], -1)
    if (up >= 0).any():
        row = int(np.argmax(up >= 0))
        raise JobInputError(f"{path}: blocks form a cycle (through block {h[row].tobytes().hex()}, row {row})")
    return h, p, heights.astype(np.int64)


def _check_attestations(path: Path) -> int:
    """Schema, binary widths and footer of the attestations file; returns its row count. A page
    that turns out unreadable later stops the job with the same kind of error (nothing is
    promoted; finished chunks stay checkpointed)."""
    if not path.is_file():
        raise JobInputError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(path.stat().st_size - 4, 0))
        tail = f.read(4)
    if head != b"PAR1" or tail != b"PAR1" or path.stat().st_size < 12:
        raise JobInputError(f"{path}: not a Parquet file (corrupt or truncated)")
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:  # polars raises several unrelated types for corrupt footers
        raise JobInputError(f"{path}: corrupt Parquet file ({first_line(exc)})") from None
    missing = [c for c in _REQUIRED if c not in schema]
    if missing:
        raise JobInputError(f"{path}: missing column(s) {', '.join(missing)}")
    present = [c for c in ATTESTATION_SCHEMA if c in schema]  # decoded-field columns are optional
    binary = [c for c in present if c in BINARY_WIDTHS]
    for c in present:
        right = schema[c] == pl.Binary if c in binary else schema[c].is_integer()
        if not right:
            expected = "Binary" if c in binary else "an integer type"
            raise JobInputError(f"{path}: column {c} has type {schema[c]}, expected {expected}")
    try:
        rows = int(pl.scan_parquet(path).select(pl.len()).collect().item())  # from the footer
        # A column whose every row has one wrong width is a schema error, not a row problem.
        # The first rows decide whether to look: only then is the whole column read.
        for scope in (pl.scan_parquet(path).head(_WIDTH_PROBE_ROWS), pl.scan_parquet(path)):
            stats = _width_stats(scope, binary)
            wrong = [c for c in binary if stats[c][0] is not None and stats[c][0] == stats[c][1] != BINARY_WIDTHS[c]]
            if not wrong:
                break
    except Exception as exc:  # polars raises several unrelated types for damaged pages
        raise JobInputError(f"{path}: corrupt Parquet file ({first_line(exc)})") from None
    if wrong:
        c = wrong[0]
        raise JobInputError(f"{path}: column {c}: expected {BINARY_WIDTHS[c]} bytes, every row has {stats[c][0]}")
    return rows


def _width_stats(scope: pl.LazyFrame, columns: list[str]) -> dict[str, tuple[int | None, int | None]]:
    """(min, max) byte length of each binary column over ``scope``."""
    row = scope.select(*[pl.col(c).bin.size().min().alias(f"{c}.min") for c in columns],
                       *[pl.col(c).bin.size().max().alias(f"{c}.max") for c in columns]).collect().row(0, named=True)
    return {c: (row[f"{c}.min"], row[f"{c}.max"]) for c in columns}


# ---- vote-level reasons ------------------------------------------------------------------


def _feed_votes(graph: BlockGraph, checkpoint: Checkpoint, chunks: int, votes: int):
    """Add every vote row to the graph, one checkpointed chunk at a time, and return what the
    vote-level reasons need: validator, epoch, whether the target is a block, and whether the
    row is the first with its body (input order).

    The graph gets the repeats of a body too: they are the same (validator, epoch, target, id)
    vote, which the graph counts once. Memory stays near 17 bytes per vote here plus the
    graph's own columns, instead of a second copy of every target and id.
    """
    blocks = np.sort(_void(graph.block_hashes()))
    v = np.empty(votes, np.int64)
    e = np.empty(votes, np.int64)
    known = np.zeros(votes, bool)
    prefix = np.empty(votes, np.uint64)  # the first 8 bytes of each id: exact duplicates are found below
    starts = np.zeros(chunks + 1, np.int64)
    for i in range(chunks):  # once per chunk
        r = checkpoint.load(i)
        k = len(r.validator)
        starts[i + 1] = starts[i] + k
        lo = starts[i]
        v[lo:lo + k], e[lo:lo + k] = r.validator, r.epoch
        prefix[lo:lo + k] = r.id[:, :8].copy().view(np.uint64).reshape(-1)
        if len(blocks) and k:
            t = _void(r.target)
            known[lo:lo + k] = blocks[np.minimum(np.searchsorted(blocks, t), len(blocks) - 1)] == t
        graph.add_votes(r.validator, r.epoch, r.target, ids=r.id)
    return v, e, known, _first_of_each_id(prefix, checkpoint, starts)


def _first_of_each_id(prefix: np.ndarray, checkpoint: Checkpoint, starts: np.ndarray) -> np.ndarray:
    """True for the first vote row of each distinct id. Rows that share an 8-byte prefix are
    few (the repeats, plus chance collisions at about n^2 / 2^65); only their full ids are
    read back from the checkpoint files and compared."""
    first = np.ones(len(prefix), bool)
    order = np.argsort(prefix, kind="stable")
    same = prefix[order][1:] == prefix[order][:-1]
    shared = np.zeros(len(prefix), bool)
    shared[order[1:][same]] = shared[order[:-1][same]] = True
    rows = np.flatnonzero(shared)  # ascending: input order
    if len(rows):
        chunk_of = np.searchsorted(starts, rows, side="right") - 1
        ids = np.empty((len(rows), 32), np.uint8)
        for i in np.unique(chunk_of):  # once per chunk holding a shared prefix
            at = chunk_of == i
            ids[at] = checkpoint.load(int(i)).id[rows[at] - starts[i]]
        seen = np.zeros(len(rows), bool)
        seen[np.unique(_void(ids), return_index=True)[1]] = True  # first occurrence, in row order
        first[rows] = seen
    return first


def _vote_reasons(graph: BlockGraph, v: np.ndarray, e: np.ndarray, known: np.ndarray,
                  first: np.ndarray) -> np.ndarray:
    """Reason codes of the vote rows (input order); see the module docstring for the rules."""
    n = len(v)
    excl = graph.exclusion_epochs()
    x = excl[v] if n else np.zeros(0, np.int64)
    equiv = (x >= 0) & (e >= x)
    live = first & ~equiv & known & (x < 0)
    del x
    # Latest epoch per validator, first row in input order among equals: sort by
    # (validator, -epoch, row) and take the head of each validator's run.
    rows = np.flatnonzero(live)
    order = rows[np.lexsort((rows, -e[rows], v[rows]))]
    head = np.ones(len(order), bool)
    head[1:] = v[order][1:] != v[order][:-1]
    ok = np.zeros(n, bool)
    ok[order[head]] = True
    return np.select([~first, equiv, ~known, ~ok],
                     [CODE[Reason.DUPLICATE], CODE[Reason.EQUIVOCATION], CODE[Reason.ORPHAN_TARGET],
                      CODE[Reason.SUPERSEDED]], CODE[Reason.OK]).astype(np.uint8)


# ---- outputs -------------------------------------------------------------------------------


_WRITE_ROWS = 65536  # fixed, not chunk_rows: the output's bytes must not depend on the chunking


def _attestations_frame(path: Path, codes: np.ndarray, sig_valid: np.ndarray) -> pl.LazyFrame:
    """The input rows plus signature_valid, counted and reason, as a lazy concatenation of
    slices: Polars streams it with memory bounded by a slice (one lazy frame with whole-column
    literals made it hold about three times the file)."""
    scan = pl.scan_parquet(path)

    def part(lo: int, hi: int) -> pl.LazyFrame:
        reason = pl.Series("reason", codes[lo:hi]).replace_strict(
            list(range(len(REASONS))), [r.value for r in REASONS], return_dtype=REASON_DTYPE)
        return scan.slice(lo, hi - lo).with_columns(
            pl.lit(pl.Series("signature_valid", sig_valid[lo:hi])),
            pl.lit(pl.Series("counted", codes[lo:hi] == CODE[Reason.OK])), pl.lit(reason))

    n = len(codes)
    return pl.concat([part(lo, min(lo + _WRITE_ROWS, n)) for lo in range(0, n, _WRITE_ROWS)] or [part(0, 0)])


def _blocks_frame(graph: BlockGraph) -> pl.DataFrame:
    hashes = graph.block_hashes()
    parent_idx = graph.parent_indices()
    parents = np.where((parent_idx >= 0)[:, None], hashes[np.maximum(parent_idx, 0)], 0).astype(np.uint8)
    on_head = np.zeros(len(hashes), bool)
    head = graph.head()
    if head is not None:
        i = int(np.flatnonzero(_void(hashes) == _void(np.frombuffer(head, np.uint8).reshape(1, 32)))[0])
        while i >= 0:  # once per block of the head chain, never per attestation row
            on_head[i] = True
            i = int(parent_idx[i])
    fin_at = graph.finalized_at_epochs()
    return pl.DataFrame([
        binary_column("hash", hashes), binary_column("parent", parents),
        pl.Series("height", graph.heights(), dtype=pl.UInt64),
        pl.Series("weight", graph.block_weights(), dtype=pl.UInt64),
        pl.Series("finalized", graph.finalized_flags(), dtype=pl.Boolean),
        pl.Series("finalized_at_epoch", fin_at, dtype=pl.Int64),  # null where never finalized (or genesis)
        pl.Series("is_head_chain", on_head, dtype=pl.Boolean),
    ]).with_columns(pl.when(pl.col("finalized_at_epoch") >= 0).then(pl.col("finalized_at_epoch"))
                    .alias("finalized_at_epoch"))


def _equivocations_frame(graph: BlockGraph) -> pl.DataFrame:
    ev = graph.equivocation_evidence()
    col = lambda name: np.frombuffer(b"".join(getattr(x, name) for x in ev), np.uint8).reshape(-1, 32)  # noqa: E731
    return pl.DataFrame([
        pl.Series("validator", [x.validator for x in ev], dtype=pl.UInt32),
        pl.Series("epoch", [x.epoch for x in ev], dtype=pl.UInt64),
        binary_column("id_a", col("id_a")), binary_column("id_b", col("id_b")),
        binary_column("target_a", col("target_a")), binary_column("target_b", col("target_b")),
    ])


def _versions() -> dict[str, str]:
    import nacl
    import numba

    import engine
    return {"bizra": engine.__version__, "numba": numba.__version__, "numpy": np.__version__,
            "polars": pl.__version__, "pynacl": nacl.__version__}


# ---- the job -------------------------------------------------------------------------------


def run_job(data_dir=None, out_dir=None, *, validators=None, blocks=None, attestations=None,
            threads: int | None = None, bps: int = 6667, chunk_rows: int = 65536,
            quiet: bool | None = None, progress: Callable[[int, int], None] | None = None,
            backend: str | None = None, cluster: str | None = None, restart: bool = False) -> JobReport:
    """Run the batch job of issue 5 over a dataset directory; see the module docstring.

    ``quiet``: True no progress bar, False always, None only on a terminal; ``progress``: an
    optional ``callback(rows_done, rows_total)`` called after every chunk; ``cluster``: None
    (this process), ``local:N`` or ``tcp://HOST:PORT`` (engine.job_dask); ``restart``: drop
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
        from engine.job_dask import parse_cluster
        parse_cluster(cluster)  # a bad spec fails before any work
    nthreads = resolve_threads(threads)
    verifier = backend_name(backend)
    paths = _inputs(data_dir, validators, blocks, attestations)
    stages: dict[str, float] = {"jit": _compile_kernels(backend)}
    t = time.perf_counter()
    weights, registered, keys = _load_validators(paths["validators"])
    hashes, parents, heights = _load_blocks(paths["blocks"])
    n = _check_attestations(paths["attestations"])
    graph = BlockGraph(weights, bps=int(bps), genesis=hashes[np.flatnonzero(~parents.any(axis=1))[0]].tobytes())
    graph.add_blocks(hashes, parents, heights)
    rejected = graph.rejected_blocks()
    if len(rejected["hash"]):
        raise JobInputError(f"{paths['blocks']}: block {rejected['hash'][0].tobytes().hex()} rejected "
                            f"({rejected['reason'][0]}, {len(rejected['hash'])} rejected blocks)")
    input_sha = {k: _sha256_file(p) for k, p in paths.items()}
    out.mkdir(parents=True, exist_ok=True)
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
    with bar, _chunk_source(cluster, todo, paths["attestations"], registered, keys, task_threads, backend) as source:
        bar.update(done)
        for i, r in source:  # once per chunk, in completion order
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
        v, e, known, first = _feed_votes(graph, checkpoint, len(chunks), int(np.count_nonzero(is_vote)))
        codes[is_vote] = _vote_reasons(graph, v, e, known, first)
        del v, e, known, first, is_vote
        head, tip = graph.head(), graph.finalized_tip()
        stages["graph"] = time.perf_counter() - t

        t = time.perf_counter()
        names = ("attestations.parquet", "blocks.parquet", "equivocations.parquet", "report.json")
        tmp = {name: checkpoint.temp(name) for name in names}
        try:
            _attestations_frame(paths["attestations"], codes, sig_valid).sink_parquet(tmp["attestations.parquet"])
            written = pl.scan_parquet(tmp["attestations.parquet"]).select(pl.len()).collect().item()
            if written != n:
                raise BizraError(f"{out}: wrote {written} attestation rows, expected {n}")
            _blocks_frame(graph).write_parquet(tmp["blocks.parquet"])
            evidence = _equivocations_frame(graph)
            evidence.write_parquet(tmp["equivocations.parquet"])
            stages["write"] = time.perf_counter() - t
            wall = time.perf_counter() - t_start
            counts = {r.value: int(c) for r, c in zip(REASONS, np.bincount(codes, minlength=len(REASONS)))}
            assert sum(counts.values()) == n, "every row has exactly one reason"
            fin = graph.finalized_flags()
            tip_height = int(graph.heights()[fin].max()) if fin.any() else 0
            report = {
                "head": head.hex() if head else None, "finalized_tip": tip.hex() if tip else None,
                "finalized_height": tip_height, "counts": counts,
                "safety_faults": [{"epoch": f.epoch, "candidate": f.candidate.hex(), "finalized_tip": f.finalized_tip.hex()}
                                  for f in graph.safety_faults()],
                "totals": {"rows": n, "signature_valid": int(sig_valid.sum()), "counted": counts["ok"],
                           "blocks": len(graph.block_hashes()), "orphan_blocks": len(graph.orphan_blocks()["hash"]),
                           "validators": int(registered.sum()), "total_weight": int(weights.sum()),
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
                "inputs": {k: {"path": str(p), "sha256": input_sha[k]} for k, p in paths.items()},
            }
            tmp["report.json"].write_text(json.dumps(report, indent=2) + "\n")
            (out / "report.json").unlink(missing_ok=True)  # an older result must not pass for this one
            for name in names:  # report.json last: its presence means a complete result
                os.replace(tmp[name], out / name)
            checkpoint.clear()
        finally:
            for p in tmp.values():
                p.unlink(missing_ok=True)
    return JobReport(out, n, counts, report["head"], report["finalized_tip"], tip_height,
                     report["rows_per_s"] or 0.0, report)


@contextlib.contextmanager
def _chunk_source(cluster, todo, path, registered, keys, threads, backend):
    """(chunk index, ChunkResult) for every chunk of ``todo``: here, or on a Dask cluster."""
    if cluster is None:
        yield ((i, check_slice(path, lo, rows, registered, keys, threads, backend)) for i, lo, rows in todo)
        return
    from engine.job_dask import chunk_results, open_cluster
    with open_cluster(cluster, threads) as (client, per_task):
        yield chunk_results(client, todo, path, registered, keys, per_task, backend)


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
