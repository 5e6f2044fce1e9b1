"""The ``bizra`` command line: a thin layer over the functions users import.

Expected errors (bad input files, bad options, unwritable outputs) are caught here only and
reported as one line on stderr with exit code 2; outputs are written to temp names and renamed
on success, so a failed command leaves no output file behind.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import polars as pl

from engine.consensus.poi_weights import SCALE, PoiParams, poi_weights, to_fixed
from engine.model.attestation import BODY_SIZE, binary_to_array
from engine.model.errors import BizraError
from engine.pipeline import job
from engine.service import job_client
from engine.service import server as service
from engine.synthetic import DEFAULT_CHUNK_ROWS, generate_dataset
from engine.tables.attestations import read_attestations
from engine.tables.parquet import write_parquet_atomic
from engine.tables.validators import keygen
from engine.tooling import gates, loadtest
from engine.verification.api import (backend_name, backend_rates, resolve_backend, resolve_threads, use_heap_scratch,
                                     verify_many)

__all__ = ["main"]

EXIT_BAD_INPUT = 2

ENV_HELP = """environment:
  BIZRA_VERIFY_BACKEND  numba | libsodium (the rollback switch); default numba when available
  POI_BATCH_VERIFY      1 = batch verifier, 0 = one-by-one (default 1)
  BIZRA_THREADS         worker threads (default: number of CPUs)"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line on stderr (exit 2) like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1: {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0: {text!r}")
    return value


def _add_verify_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_positive, default=None, help="verify threads (default: BIZRA_THREADS, else CPUs)")
    p.add_argument("--backend", choices=["numba", "libsodium"], default=None,
                   help="signature verifier (default: BIZRA_VERIFY_BACKEND, else numba when available)")


def _add_weights_cli(subparsers) -> argparse.ArgumentParser:
    """Register ``bizra weights`` (engine.consensus.poi_weights); its handler is ``_cmd_weights``."""
    p = subparsers.add_parser(
        "weights", help="next-epoch validator weights from PoI scores (fixed point, 10^6 scale)",
        description="W_v = min(cap, base + a*I_v + b*rep_v + c*isqrt(stake_v)), "
        "I_v(t) = lambda*I_v(t-1) + sum(poi_score of v's valid attestations in epoch t). "
        "All values are integers in micro-units (1.0 = 1000000); coefficients are given as "
        "decimals and converted exactly.")
    p.add_argument("attestations", type=Path, metavar="ATTESTATIONS.parquet",
                   help="validator_index, epoch, poi_score (+ valid, body when present)")
    p.add_argument("--out", required=True, type=Path, metavar="FILE",
                   help="Parquet output: validator_index, impact, weight")
    p.add_argument("--validators", type=Path, default=None,
                   help="Parquet with validator_index (or index), reputation, stake")
    p.add_argument("--prev-impact", type=Path, default=None,
                   help="Parquet with validator_index, impact (I before the first epoch)")
    p.add_argument("--first-epoch", type=int, default=None)
    p.add_argument("--last-epoch", type=int, default=None)
    defaults = PoiParams()
    for name in ("base", "a", "b", "c", "cap", "lam"):
        p.add_argument(f"--{name}", type=to_fixed, default=getattr(defaults, name),
                       help=f"decimal (default {getattr(defaults, name) / SCALE:g})")
    p.set_defaults(func=_cmd_weights)
    return p


def _cmd_weights(args: argparse.Namespace) -> int:
    """Handler of ``bizra weights``: read, compute, write atomically, print one line."""
    def read(path):
        if path is None:
            return None
        if not path.exists():
            raise ValueError(f"{path}: no such file")
        return pl.read_parquet(path)

    params = PoiParams(**{k: getattr(args, k) for k in ("base", "a", "b", "c", "cap", "lam")})
    out = poi_weights(pl.scan_parquet(args.attestations) if args.attestations.exists()
                      else read(args.attestations), read(args.validators),
                      prev_impact=read(args.prev_impact), params=params,
                      first_epoch=args.first_epoch, last_epoch=args.last_epoch)
    write_parquet_atomic(out, args.out)
    total = int(out["weight"].sum()) if out.height else 0
    print(f"weights for {out.height:,} validators (total {total / SCALE:,.6f}) -> {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of ``bizra`` (exposed for docs and tests)."""
    parser = _Parser(
        prog="bizra",
        description="Batch engine for Ed25519 Proof-of-Impact attestations on a BlockGraph.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bizra {importlib.metadata.version('bizra')}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    g = sub.add_parser("generate", help="write a synthetic dataset (validators, blocks, attestations)",
                       description=textwrap.fill(
                       "Write DIR/validators.parquet, DIR/blocks.parquet and DIR/attestations.parquet: "
                       "a main chain with forks, one vote per validator per epoch near the tip, and a few "
                       "corrupted signatures, equivocations, key mismatches, unknown targets and duplicates. "
                       "Deterministic for --seed; its keys are derived from the seed (test data only).", 88),
                       epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--out", required=True, type=Path, help="output directory (created)")
    g.add_argument("--validators", required=True, type=_positive)
    g.add_argument("--blocks", required=True, type=_positive)
    g.add_argument("--attestations", required=True, type=_non_negative)
    g.add_argument("--seed", required=True, type=_non_negative)
    for flag, default in [("bad-signature", 0.02), ("equivocation", 0.0005), ("fork", 0.05),
                          ("orphan", 0.003), ("key-mismatch", 0.003), ("unknown-validator", 0.001),
                          ("duplicate", 0.002), ("malformed", 0.0)]:
        g.add_argument(f"--{flag}-rate", type=_rate, default=default, metavar="F", help=f"fraction (default {default})")
    g.add_argument("--threads", type=_positive, default=None, help="signing threads (default: BIZRA_THREADS, else CPUs)")
    g.add_argument("--chunk-rows", type=_positive, default=DEFAULT_CHUNK_ROWS, metavar="N",
                   help="rows built, signed and written at a time (memory, not output: the files are the same "
                        f"for any N; default {DEFAULT_CHUNK_ROWS})")
    g.add_argument("--quiet", action="store_true", help="no progress bar")

    k = sub.add_parser("keygen", help="write a validator set and its 0600 secret key file",
                       description=textwrap.fill(
                       "Write DIR/validators.parquet (index, public_key, weight) and "
                       "DIR/validator_keys.secret (32-byte seeds, mode 0600, never printed). Keys come from "
                       "libsodium's CSPRNG; --seed derives them deterministically (test data only).", 88))
    k.add_argument("--out", required=True, type=Path, help="output directory (created)")
    k.add_argument("--validators", required=True, type=_positive)
    k.add_argument("--weight", type=_non_negative, default=1, help="weight of every validator (default 1)")
    k.add_argument("--seed", type=_non_negative, default=None, help="deterministic TEST keys from this seed")

    v = sub.add_parser("verify", help="check every attestation's signature; write rows plus a valid column",
                       description=textwrap.fill(
                       "Read ATTESTATIONS.parquet (body, signature, public_key), verify each "
                       "signature over its body, and write the input rows plus a boolean `valid` column to FILE.", 88),
                       epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("attestations", type=Path, metavar="ATTESTATIONS.parquet")
    v.add_argument("--out", required=True, type=Path, metavar="FILE")
    _add_verify_options(v)

    d = sub.add_parser("demo", help="generate a demo dataset and process it, printing a summary",
                       description=textwrap.fill(
                       "Generate 200K attestations / 1K validators / 5K blocks into --out/data, "
                       "then run the batch job (bizra run) on them into --out and print a summary: "
                       "head, finalized height, rows per reason, throughput.", 88),
                       epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--out", type=Path, default=Path("demo-out"), help="output directory (default ./demo-out)")
    d.add_argument("--attestations", type=_non_negative, default=200_000)
    d.add_argument("--validators", type=_positive, default=1_000)
    d.add_argument("--blocks", type=_positive, default=5_000)
    d.add_argument("--seed", type=_non_negative, default=1)
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_verify_options(d)
    _add_weights_cli(sub)
    job.add_cli(sub)
    job_client.add_cli(sub)
    service.add_cli(sub)
    loadtest.add_cli(sub)
    gates.add_cli(sub)
    return parser


# ---- commands -----------------------------------------------------------------------------


def _out_file(path: Path) -> Path:
    if path.is_dir():
        raise BizraError(f"{path}: is a directory, expected an output file name")
    if not path.parent.exists():
        raise BizraError(f"{path.parent}: output directory does not exist")
    if not path.parent.is_dir():
        raise BizraError(f"{path.parent}: is not a directory (output {path.name})")
    if not os.access(path.parent, os.W_OK):
        raise BizraError(f"{path.parent}: output directory is not writable")
    return path


def _out_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise BizraError(f"{path}: exists and is not a directory")
    return path


def verify_file(src: Path, dst: Path, *, threads: int | None, backend: str | None) -> dict[str, float]:
    """Verify every row of an attestations file; write rows + ``valid`` atomically to ``dst``."""
    _out_file(dst)
    resolve_backend(backend)  # fail on a bad BIZRA_VERIFY_BACKEND before reading anything
    df = read_attestations(src)
    nthreads = resolve_threads(threads)
    body = binary_to_array(df["body"], BODY_SIZE)
    sig = binary_to_array(df["signature"], 64)
    pk = binary_to_array(df["public_key"], 32)
    t0 = time.perf_counter()
    valid = verify_many(body, sig, pk, threads=nthreads, backend=backend)
    seconds = time.perf_counter() - t0
    write_parquet_atomic(df.with_columns(pl.Series("valid", valid, dtype=pl.Boolean)), dst)
    n = len(valid)
    return {"rows": n, "valid": int(np.count_nonzero(valid)), "seconds": seconds,
            "rows_per_s": n / seconds if seconds > 0 else float("inf"), "threads": nthreads}


def _cmd_verify(args: argparse.Namespace) -> int:
    s = verify_file(args.attestations, args.out, threads=args.threads, backend=args.backend)
    print(f"verified {s['rows']:,} rows: {s['valid']:,} valid, {s['rows'] - s['valid']:,} invalid "
          f"({backend_name(args.backend)}, {s['threads']} threads, {s['rows_per_s']:,.0f} rows/s) -> {args.out}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    _out_dir(args.out)
    g = generate_dataset(
        args.out, validators=args.validators, blocks=args.blocks, attestations=args.attestations, seed=args.seed,
        bad_signature_rate=args.bad_signature_rate, equivocation_rate=args.equivocation_rate,
        fork_rate=args.fork_rate, orphan_rate=args.orphan_rate, key_mismatch_rate=args.key_mismatch_rate,
        unknown_validator_rate=args.unknown_validator_rate, duplicate_rate=args.duplicate_rate,
        malformed_rate=args.malformed_rate,
        threads=args.threads, progress=False if args.quiet else None, chunk_rows=args.chunk_rows,
    )
    print(f"wrote {args.out}: {len(g.validators):,} validators, {len(g.blocks):,} blocks, "
          f"{g.rows:,} attestations in {g.seconds['total']:.1f}s")
    return 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    _out_dir(args.out)
    df = keygen(args.out, args.validators, weight=args.weight, seed=args.seed)
    note = " (seeded: TEST KEYS ONLY)" if args.seed is not None else ""
    print(f"wrote {args.out}/validators.parquet ({len(df):,} validators) and "
          f"{args.out}/validator_keys.secret (mode 0600){note}")
    return 0


_DEMO_SAMPLE_ROWS = 16_384


def run_demo_job(data_dir: Path, out_dir: Path, args: argparse.Namespace) -> list[str]:
    """The processing step of ``bizra demo``: the full batch job (``bizra run``), then the
    verifier against libsodium on a sample of the same rows (one thread each)."""
    r = job.run_job(data_dir, out_dir, threads=args.threads, backend=args.backend,
                    quiet=True if args.quiet else None)
    counts = ", ".join(f"{k} {v:,}" for k, v in r.counts.items() if v)
    verify = r.report["verify"]
    jit = r.report["seconds"]["jit"]
    return [
        f"head {r.head}",
        f"finalized height {r.finalized_height} (tip {r.finalized_tip})",
        f"{r.rows:,} attestations: {counts}",
        f"job {r.rows_per_s:,.0f} rows/s; signatures {verify['rows_per_s']:,.0f}/s "
        f"({backend_name(args.backend)})",
        _demo_ratio_line(data_dir / "attestations.parquet"),
        f"outputs: {out_dir}/attestations.parquet, blocks.parquet, equivocations.parquet, report.json",
    ] + ([f"(plus {jit:.1f} s one-time Numba compilation, cached for next runs)"] if jit >= 1 else [])


def _demo_ratio_line(path: Path) -> str:
    df = pl.read_parquet(path, columns=["body", "signature", "public_key"], n_rows=_DEMO_SAMPLE_ROWS)
    rates = backend_rates(df["body"].to_list(), df["signature"].to_list(), df["public_key"].to_list())
    return (f"verifier on {len(df):,} of these rows, one thread each: numba {rates['numba']:,.0f}/s, "
            f"libsodium {rates['libsodium']:,.0f}/s = {rates['numba'] / rates['libsodium']:.1f}x")


def _cmd_demo(args: argparse.Namespace) -> int:
    out = _out_dir(args.out)
    resolve_backend(args.backend)
    data = out / "data"
    g = generate_dataset(data, validators=args.validators, blocks=args.blocks, attestations=args.attestations,
                         seed=args.seed, threads=args.threads, progress=False if args.quiet else None)
    lines = [f"generated {g.rows:,} attestations, {len(g.validators):,} validators, "
             f"{len(g.blocks):,} blocks in {g.seconds['total']:.1f}s -> {data}"]
    lines += run_demo_job(data, out, args)
    print("\n".join(lines))
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


_COMMANDS = {"generate": _cmd_generate, "keygen": _cmd_keygen, "verify": _cmd_verify, "demo": _cmd_demo,
             "weights": _cmd_weights, "run": job.cmd_run, "serve": service.cmd_serve,
             "submit": job_client.cmd_submit, "status": job_client.cmd_status, "cancel": job_client.cmd_cancel,
             "loadtest": loadtest.cmd_loadtest, "gates": gates.cmd_gates}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bizra`` console script; returns the exit code.

    Example: ``main(["verify", "data/attestations.parquet", "--out", "verified.parquet"])``.
    """
    args = build_parser().parse_args(argv)
    use_heap_scratch()  # the command line owns its process (see use_heap_scratch)
    try:
        return _COMMANDS[args.command](args)
    except (BizraError, ValueError) as exc:
        # ValueError covers configuration (BIZRA_THREADS=abc, unknown backend name).
        print(f"bizra {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bizra {args.command}: error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"bizra {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
