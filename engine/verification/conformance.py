"""The public Ed25519 conformance suites and their ZIP-215 verdicts, and the check against them.

Three public suites ship inside the package, in ``engine/verification/vectors/`` (package data,
so an installed wheel has them; override the folder with ``BIZRA_VECTORS_DIR``): Wycheproof,
C2SP CCTV and ed25519-speccheck, with their licences, where each file came from (that folder's
README) and the verdict of every vector under ZIP-215 in ``expected_zip215.json``. The tests
(tests/verification/test_conformance.py) and the conformance gate of ``bizra gates`` load them
through here, so both judge the same vectors the same way. Example::

    vectors = load_vectors()
    assert conformance_mismatches(vectors, "batch") == []
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.model.errors import InputError
from engine.verification.api import verify_many, verify_one

__all__ = ["MODES", "SUITES", "Vector", "conformance_mismatches", "load_vectors", "vectors_dir"]

SUITES = ("wycheproof", "cctv", "speccheck")
MODES = ("verify_one", "single", "batch")
_FILES = ("expected_zip215.json", "wycheproof_ed25519_test.json", "cctv_ed25519vectors.json",
          "speccheck_cases.json")


class Vector(NamedTuple):
    """One vector: ``id`` is Wycheproof's tcId, CCTV's number or speccheck's index."""

    suite: str
    id: object
    msg: bytes
    sig: bytes
    pk: bytes
    expected: bool

    @property
    def name(self) -> str:
        return f"{self.suite}:{self.id}"


def vectors_dir() -> Path:
    """BIZRA_VECTORS_DIR, else the suites shipped with the package (``vectors/`` beside this module)."""
    env = os.environ.get("BIZRA_VECTORS_DIR", "").strip()
    return Path(env) if env else Path(__file__).resolve().parent / "vectors"


def _read_json(folder: Path, name: str):
    path = folder / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (BIZRA_VECTORS_DIR names a folder without the suites?)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None


def load_vectors(directory: str | Path | None = None) -> list[Vector]:
    """Every vector of the three suites with its ZIP-215 verdict, in file order.

    Example: ``{v.suite for v in load_vectors()} == set(SUITES)``.
    """
    folder = Path(directory) if directory is not None else vectors_dir()
    expected, wy, cctv, spec = (_read_json(folder, name) for name in _FILES)
    out: list[Vector] = []
    wy_exp = expected["wycheproof_by_tcId"]
    for group in wy["testGroups"]:
        pk = bytes.fromhex(group["publicKey"]["pk"])
        for t in group["tests"]:
            out.append(Vector("wycheproof", t["tcId"], bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]), pk,
                              bool(wy_exp[str(t["tcId"])])))
    cctv_exp = expected["cctv_by_number"]
    for v in cctv:
        # CCTV messages are plain ASCII strings, not hex
        out.append(Vector("cctv", v["number"], v["msg"].encode("utf-8"), bytes.fromhex(v["sig"]),
                          bytes.fromhex(v["key"]), bool(cctv_exp[v["number"]])))
    spec_exp = expected["speccheck_by_index"]
    for i, v in enumerate(spec):
        out.append(Vector("speccheck", i, bytes.fromhex(v["message"]), bytes.fromhex(v["signature"]),
                          bytes.fromhex(v["pub_key"]), bool(spec_exp[i])))
    return out


def conformance_mismatches(vectors: list[Vector], mode: str, *, backend: str = "numba",
                           threads: int | None = None) -> list[str]:
    """Names of the vectors whose verdict differs from ZIP-215's, for one verification path.

    ``mode``: "verify_one" (one call per vector), "single" (verify_many, batch=False) or
    "batch" (every suite as one batch, then all suites together as one batch).
    Example: ``conformance_mismatches(load_vectors(), "single") == []``.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    expected = np.array([v.expected for v in vectors], dtype=bool)
    if mode == "verify_one":
        got = np.array([verify_one(v.msg, v.sig, v.pk, backend=backend) for v in vectors], dtype=bool)
        return _names(vectors, got != expected)
    if mode == "single":
        got = _verify(vectors, backend=backend, batch=False, threads=threads)
        return _names(vectors, got != expected)
    wrong = np.zeros(len(vectors), dtype=bool)
    suites = np.array([v.suite for v in vectors])
    for suite in SUITES:
        rows = np.flatnonzero(suites == suite)
        if rows.size:
            got = _verify([vectors[i] for i in rows], backend=backend, batch=True, threads=threads)
            wrong[rows] |= got != expected[rows]
    wrong |= _verify(vectors, backend=backend, batch=True, threads=threads) != expected
    return _names(vectors, wrong)


def _verify(vectors: list[Vector], **kwargs) -> np.ndarray:
    return verify_many([v.msg for v in vectors], [v.sig for v in vectors], [v.pk for v in vectors], **kwargs)


def _names(vectors: list[Vector], wrong: np.ndarray) -> list[str]:
    return [vectors[i].name for i in np.flatnonzero(wrong)]
