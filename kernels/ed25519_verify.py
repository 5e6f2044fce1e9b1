"""Ed25519 verification under ZIP-215, one row at a time and as a batch.

The rule (docs/design.md, "Validity rule"): decode A and R with ZIP-215 decompression,
require S < L, k = SHA-512(R_bytes || A_bytes || M) mod L, and accept iff
[8]([S]B - R - [k]A) = 0.

A chunk of rows (`verify_chunk`, one thread's share of a call):
  1. `prepare_rows`: per row check S < L and hash k (serial), then decompress R eight rows
     at a time (kernels.verify_x8). Malformed rows are marked invalid here and never enter
     an equation.
  2. Rows of suspect keys (keys whose recent rows mostly failed, kept by the caller) are
     checked singly: a batch holding them would fail and be bisected for nothing.
  3. The other rows go through the batch equation with 128-bit z_i,
        [8]( -(sum z_i S_i) B + sum z_i R_i + sum_keys (sum_{i: key} z_i k_i) A_key ) = 0
     which coalesces every row of a key into one point; sum z_i S_i and each per-key sum are
     accumulated in 512-bit form and reduced once.
  4. If it fails, bisect: compute the left half's [8]-sum explicitly; the right half's is the
     difference, so each level costs one half-size MSM (one bad row in a batch costs about
     2x an all-good batch). Ranges of <= SINGLE_CHECK_ROWS rows are set aside and checked
     singly, eight at a time, when the batch is done.
  5. While bad rows are common, batches would mostly be bisected, so rows are checked singly
     instead (see `verify_chunk` for when it switches).
Single and batch agree on every input: both check the same cofactored equation, and a
failing batch never decides a row by itself -- it only narrows down where to look.

Inputs travel in named tuples: `SignedRows` (the chunk's columns), `KeyTables` (its distinct
keys, decompressed, with their precomputed tables), `Prepared` (what step 1 computes),
`BatchPlan` (how the caller wants the chunk checked).
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from kernels.edwards import (
    BASE_NIELS_ODD, ge_add_cached, ge_decompress_zip215, ge_dbl, ge_identity, ge_is_identity,
    ge_load, ge_madd, ge_msub, ge_mul_by_cofactor, ge_store, ge_sub, ge_sub_cached,
    ge_to_cached, niels_load,
)
from kernels.fixed_base import BASE_COMB, comb_mul, comb_table_build, odd_multiples_build
from kernels.msm import msm_pippenger, msm_straus, pippenger_window
from kernels.scalar25519 import (
    sc_acc_mul, sc_at, sc_is_canonical, sc_load, sc_neg, sc_reduce_bytes64, sc_reduce_wide,
    sc_store, sc_wnaf,
)
from kernels.sha512 import sha512_ram_row
from kernels.verify_x8 import decompress_rows_x8, verify_rows_single_x8

__all__ = [
    "SignedRows", "KeyTables", "Prepared", "BatchPlan", "decompress_rows", "build_key_tables",
    "prepare_rows", "new_prepared", "verify_rows_single", "batch_verify_rows",
    "batch_equation_holds", "verify_chunk", "STRAUS_MAX_TERMS", "SINGLE_CHECK_ROWS",
    "SINGLE_MODE_SHARE", "PROBE_ROWS", "X8_MIN_ROWS",
]

# Batches of up to this many MSM terms use Straus, larger ones Pippenger. Measured with
# scripts/bench_verify.py --msm-crossover (distinct keys): 129 terms 0.83 vs 0.93 ms,
# 193 terms 1.28 vs 1.25 ms, 257 terms 1.69 vs 1.56 ms.
STRAUS_MAX_TERMS = 192
# Bisection stops at ranges this small; their rows are checked singly.
SINGLE_CHECK_ROWS = 4
# Above this share of invalid rows, single checks are cheaper than locating the bad rows by
# bisection; probes of PROBE_ROWS rows re-measure the share. With single checks eight at a
# time (kernels.verify_x8) scripts/bench_verify.py --bad-share puts the crossover near 0.1%.
SINGLE_MODE_SHARE = 0.0003
PROBE_ROWS = 1024
# Fewer rows than this are checked by the serial single check: eight lanes cost about what
# four serial checks do.
X8_MIN_ROWS = 4


class SignedRows(NamedTuple):
    """The rows of one chunk: message i is msg_data[msg_offsets[i]:msg_offsets[i + 1]]
    (absolute offsets), signed by the key of row key_index[i] in the chunk's KeyTables."""
    msg_data: np.ndarray  # uint8[total]
    msg_offsets: np.ndarray  # int64[n + 1]
    sigs: np.ndarray  # uint8[n, 64]
    pks: np.ndarray  # uint8[n, 32]
    key_index: np.ndarray  # int64[n]


class KeyTables(NamedTuple):
    """The distinct keys of a call. table_of[u] indexes combs/odds (kernels.fixed_base:
    comb for single checks, odd multiples for Straus) or is -1; suspect[u]: the key's recent
    rows mostly failed, so its rows are checked singly."""
    points: np.ndarray  # uint64[u, 4, 5], extended, Z = 1 (identity where undecodable)
    ok: np.ndarray  # bool[u], decodable
    table_of: np.ndarray  # int64[u]
    combs: np.ndarray  # uint64[t, KEY_COMB_ROWS, 8, 3, 5]
    odds: np.ndarray  # uint64[t, ODD_MULTIPLES, 3, 5]
    suspect: np.ndarray  # bool[u]


class Prepared(NamedTuple):
    """Per-row results of `prepare_rows`. row_ok[i] False: malformed or not decodable or
    S >= L (invalid whatever the equation says)."""
    row_ok: np.ndarray  # bool[n]
    r_points: np.ndarray  # uint64[n, 4, 5], R decompressed (Z = 1)
    k_scalars: np.ndarray  # uint64[n, 4], k mod L
    s_scalars: np.ndarray  # uint64[n, 4], S


class BatchPlan(NamedTuple):
    """How a chunk is checked: batches of up to max_batch rows (use_batch), starting with
    single checks when the caller has seen many bad rows lately (start_single)."""
    use_batch: bool
    max_batch: int
    start_single: bool


@njit(cache=True, nogil=True)
def decompress_rows(encodings, points, ok):
    """ZIP-215 decompression of each 32-byte row into points[i] (Z = 1); ok[i] = decodable."""
    for i in range(encodings.shape[0]):
        good, P = ge_decompress_zip215(encodings[i])
        ok[i] = good
        if good:
            ge_store(points, i, P)
        else:
            ge_store(points, i, ge_identity())


@njit(cache=True, nogil=True)
def build_key_tables(points, combs, odds):
    """combs[i] / odds[i] = the comb and the odd-multiples table of points[i] (Z = 1)."""
    for i in range(points.shape[0]):
        P = ge_load(points, i)
        comb_table_build(P, combs[i])
        odd_multiples_build(P, odds[i])


@njit(cache=True, nogil=True)
def new_prepared(row_ok):
    """Scratch for `prepare_rows` on len(row_ok) rows (row_ok is used, not copied)."""
    n = row_ok.shape[0]
    return Prepared(row_ok, np.empty((n, 4, 5), dtype=np.uint64),
                    np.empty((n, 4), dtype=np.uint64), np.empty((n, 4), dtype=np.uint64))


@njit(cache=True, nogil=True)
def prepare_rows(rows, keys, prep):
    """Per-row work shared by single and batch checks (see `Prepared`).

    In: prep.row_ok[i] False for rows already known malformed (wrong lengths). Out: R
    decompressed, k, S, and row_ok cleared for S >= L, undecodable R or undecodable A.
    """
    digest = np.empty(64, dtype=np.uint8)
    sigs = rows.sigs
    n = sigs.shape[0]
    todo = np.empty(n, dtype=np.int64)
    n_todo = 0
    for i in range(n):
        if not prep.row_ok[i]:
            continue
        if not keys.ok[rows.key_index[i]]:
            prep.row_ok[i] = False
            continue
        S = sc_load(sigs[i], 32)
        if not sc_is_canonical(S):
            prep.row_ok[i] = False
            continue
        sc_store(prep.s_scalars, i, S)
        sha512_ram_row(sigs[i], rows.pks[i], rows.msg_data, rows.msg_offsets[i],
                       rows.msg_offsets[i + 1], digest)
        sc_store(prep.k_scalars, i, sc_reduce_bytes64(digest))
        todo[n_todo] = i
        n_todo += 1
    r_ok = np.ones(n, dtype=np.bool_)
    decompress_rows_x8(sigs, todo[:n_todo], prep.r_points, r_ok)
    for t in range(n_todo):
        i = todo[t]
        if not r_ok[i]:
            prep.row_ok[i] = False


@njit(cache=True, nogil=True)
def _row_equation_is_zero(R, A, S, k, naf_s, naf_k, a_table):
    """[8]([S]B - [k]A - R) == 0, by a joint sliding-window double-scalar multiplication.

    B's odd multiples up to 127B are precomputed (BASE_NIELS_ODD, width 8); A's odd
    multiples up to 15A are built here (width 5).
    """
    sc_wnaf(S, 127, naf_s)
    sc_wnaf(k, 15, naf_k)
    P = A
    P2 = ge_to_cached(ge_dbl(A))
    for j in range(8):
        ge_store(a_table, j, ge_to_cached(P))
        if j < 7:
            P = ge_add_cached(P, P2)
    top = 255
    while top >= 0 and naf_s[top] == 0 and naf_k[top] == 0:
        top -= 1
    Q = ge_identity()
    for b in range(top, -1, -1):
        Q = ge_dbl(Q)
        ds = naf_s[b]
        if ds > 0:
            Q = ge_madd(Q, niels_load(BASE_NIELS_ODD, ds >> 1))
        elif ds < 0:
            Q = ge_msub(Q, niels_load(BASE_NIELS_ODD, (-ds) >> 1))
        dk = naf_k[b]
        if dk > 0:
            Q = ge_sub_cached(Q, ge_load(a_table, dk >> 1))
        elif dk < 0:
            Q = ge_add_cached(Q, ge_load(a_table, (-dk) >> 1))
    return ge_is_identity(ge_mul_by_cofactor(ge_sub(Q, R)))


@njit(cache=True, nogil=True)
def _verify_rows_serial(idx, rows, keys, prep, out):
    """The serial single check of each row in idx (few rows: see X8_MIN_ROWS).

    A key with a comb is checked as [8]([S]B - [k]A - R) with two fixed-base combs; otherwise
    by the joint sliding window.
    """
    naf_s = np.empty(256, dtype=np.int8)
    naf_k = np.empty(256, dtype=np.int8)
    digits = np.empty(64, dtype=np.int8)
    a_table = np.empty((8, 4, 5), dtype=np.uint64)
    for t in range(idx.shape[0]):
        i = idx[t]
        S = sc_at(prep.s_scalars, i)
        k = sc_at(prep.k_scalars, i)
        key = rows.key_index[i]
        R = ge_load(prep.r_points, i)
        tab = keys.table_of[key]
        if tab >= 0:
            Q = ge_sub(comb_mul(BASE_COMB, S, digits), comb_mul(keys.combs[tab], k, digits))
            out[i] = ge_is_identity(ge_mul_by_cofactor(ge_sub(Q, R)))
        else:
            out[i] = _row_equation_is_zero(R, ge_load(keys.points, key), S, k, naf_s, naf_k,
                                           a_table)


@njit(cache=True, nogil=True)
def verify_rows_single(idx, rows, keys, prep, out):
    """out[i] = the single ZIP-215 verdict for each i in idx (prepared rows; rows with
    prep.row_ok False get False)."""
    good = np.empty(idx.shape[0], dtype=np.int64)
    n_good = 0
    for t in range(idx.shape[0]):
        i = idx[t]
        if prep.row_ok[i]:
            good[n_good] = i
            n_good += 1
        else:
            out[i] = False
    if n_good >= X8_MIN_ROWS:
        verify_rows_single_x8(good[:n_good], rows, keys, prep, out)
    else:
        _verify_rows_serial(good[:n_good], rows, keys, prep, out)


@njit(cache=True, nogil=True)
def batch_equation_sum(idx, z, rows, keys, prep, key_acc, key_mark):
    """[8]( -(sum z_i S_i) B + sum z_i R_i + sum_keys c_key A_key ) over the rows in idx.

    Keys with precomputed tables (keys.table_of[key] >= 0, an index into keys.odds) enter a
    Straus MSM as tabled points. key_acc (n_keys, 8) must be zero and key_mark (n_keys,) all
    -1 on entry; both are left that way on return.
    """
    n = idx.shape[0]
    acc_s = np.zeros(8, dtype=np.uint64)
    used = np.empty(n, dtype=np.int64)
    n_used = 0
    n_tabled = 0
    short_points = np.empty((n, 4, 5), dtype=np.uint64)
    short_scalars = np.zeros((n, 4), dtype=np.uint64)
    for t in range(n):
        i = idx[t]
        zi = (z[i, 0], z[i, 1])
        sc_acc_mul(acc_s, sc_at(prep.s_scalars, i), zi)
        key = rows.key_index[i]
        if key_mark[key] < 0:
            key_mark[key] = n_used
            used[n_used] = key
            n_used += 1
            if keys.table_of[key] >= 0:
                n_tabled += 1
        sc_acc_mul(key_acc[key], sc_at(prep.k_scalars, i), zi)
        for j in range(4):
            for q in range(5):
                short_points[t, j, q] = prep.r_points[i, j, q]
        short_scalars[t, 0] = zi[0]
        short_scalars[t, 1] = zi[1]
    base_scalar = np.empty(4, dtype=np.uint64)
    neg = sc_neg(sc_reduce_wide(acc_s))
    for j in range(4):
        base_scalar[j] = neg[j]
    # Tables pay off in Straus (they replace building a table and ~14 of ~42 additions per
    # key); in Pippenger a key costs ~254/c madds either way, and scanning every tabled NAF
    # at every bit costs more than it saves. So tables are used only when Straus runs.
    use_straus = n + n_used - n_tabled <= STRAUS_MAX_TERMS
    if not use_straus:
        n_tabled = 0
    n_long = n_used - n_tabled
    long_points = np.empty((n_long, 4, 5), dtype=np.uint64)
    long_scalars = np.empty((n_long, 4), dtype=np.uint64)
    tab_ids = np.empty(n_tabled, dtype=np.int64)
    tab_scalars = np.empty((n_tabled, 4), dtype=np.uint64)
    n_long = 0
    n_tabled = 0
    for u in range(n_used):
        key = used[u]
        c_key = sc_reduce_wide(key_acc[key])
        if use_straus and keys.table_of[key] >= 0:
            tab_ids[n_tabled] = keys.table_of[key]
            sc_store(tab_scalars, n_tabled, c_key)
            n_tabled += 1
        else:
            long_points[n_long] = keys.points[key]
            sc_store(long_scalars, n_long, c_key)
            n_long += 1
        key_acc[key, :] = 0
        key_mark[key] = -1
    if use_straus:
        Q = msm_straus(short_points, short_scalars, long_points, long_scalars, base_scalar,
                       keys.odds, tab_ids, tab_scalars)
    else:
        c = pippenger_window(n, n_long)
        Q = msm_pippenger(short_points, short_scalars, long_points, long_scalars, base_scalar,
                          keys.odds, tab_ids, tab_scalars, c)
    return ge_mul_by_cofactor(Q)


@njit(cache=True, nogil=True)
def batch_equation_holds(idx, z, rows, keys, prep):
    """Whether the batch equation holds over the rows in idx (prepared, well-formed)."""
    n_keys = keys.points.shape[0]
    key_acc = np.zeros((n_keys, 8), dtype=np.uint64)
    key_mark = np.full(n_keys, -1, dtype=np.int64)
    return ge_is_identity(batch_equation_sum(idx, z, rows, keys, prep, key_acc, key_mark))


@njit(cache=True, nogil=True)
def batch_verify_rows(idx, z, rows, keys, prep, out):
    """out[i] for each i in idx: batch check, then bisection to pin down invalid rows, whose
    last ranges (<= SINGLE_CHECK_ROWS rows) are checked singly at the end, all together.

    idx must hold only rows with prep.row_ok True. Returns the number of MSMs run.
    """
    m = idx.shape[0]
    if m == 0:
        return 0
    n_keys = keys.points.shape[0]
    key_acc = np.zeros((n_keys, 8), dtype=np.uint64)
    key_mark = np.full(n_keys, -1, dtype=np.int64)
    # A stack of row ranges [lo, hi) with the [8]-sum of their equation already known.
    cap = 2 * 64 + m
    stack_lo = np.empty(cap, dtype=np.int64)
    stack_hi = np.empty(cap, dtype=np.int64)
    stack_sum = np.empty((cap, 4, 5), dtype=np.uint64)
    leaves = np.empty(m, dtype=np.int64)
    n_leaves = 0
    stack_lo[0] = 0
    stack_hi[0] = m
    ge_store(stack_sum, 0, batch_equation_sum(idx, z, rows, keys, prep, key_acc, key_mark))
    n_msm = 1
    top = 1
    while top > 0:
        top -= 1
        lo = stack_lo[top]
        hi = stack_hi[top]
        total = ge_load(stack_sum, top)
        if ge_is_identity(total):
            for t in range(lo, hi):
                out[idx[t]] = True
            continue
        if hi - lo <= SINGLE_CHECK_ROWS:
            for t in range(lo, hi):
                leaves[n_leaves] = idx[t]
                n_leaves += 1
            continue
        mid = (lo + hi) // 2
        left = batch_equation_sum(idx[lo:mid], z, rows, keys, prep, key_acc, key_mark)
        n_msm += 1
        stack_lo[top] = lo
        stack_hi[top] = mid
        ge_store(stack_sum, top, left)
        stack_lo[top + 1] = mid
        stack_hi[top + 1] = hi
        ge_store(stack_sum, top + 1, ge_sub(total, left))
        top += 2
    verify_rows_single(leaves[:n_leaves], rows, keys, prep, out)
    return n_msm


@njit(cache=True, nogil=True)
def verify_chunk(rows, keys, z, plan, row_ok, out):
    """Verdicts for a chunk of rows into out; the whole pipeline for one thread.

    row_ok (in/out): False for rows already known malformed. With plan.use_batch False every
    row is checked singly. Otherwise rows of suspect keys are checked singly, and the others
    go through the batch equation, adaptively: locating k bad rows in a failed batch of m
    costs about (log2(k) + 1) / 2 extra MSMs over shrinking subsets, which beats single
    checks only while bad rows are rare (SINGLE_MODE_SHARE). So:
      - batches start at plan.max_batch rows (or in single mode when plan.start_single says
        the caller has seen many bad rows lately);
      - after a batch whose share of invalid rows exceeds SINGLE_MODE_SHARE, rows are
        checked singly, a probe of PROBE_ROWS rows at a time;
      - a probe under the share returns to batches, starting at PROBE_ROWS rows and
        doubling after each clean batch up to plan.max_batch; when such a return fails at
        once, the next probe is twice as long (bad rows that come and go, as from keys not
        yet known to be suspect, would otherwise pay a bisection per probe).
    Returns the number of MSMs run.
    """
    prep = new_prepared(row_ok)
    prepare_rows(rows, keys, prep)
    out[:] = False
    good = np.flatnonzero(row_ok)
    if not plan.use_batch or good.shape[0] < 2:
        verify_rows_single(good, rows, keys, prep, out)
        return 0
    trusted = np.empty(good.shape[0], dtype=np.int64)
    suspect = np.empty(good.shape[0], dtype=np.int64)
    n_trusted = 0
    n_suspect = 0
    for t in range(good.shape[0]):
        i = good[t]
        if keys.suspect[rows.key_index[i]]:
            suspect[n_suspect] = i
            n_suspect += 1
        else:
            trusted[n_trusted] = i
            n_trusted += 1
    verify_rows_single(suspect[:n_suspect], rows, keys, prep, out)
    trusted = trusted[:n_trusted]
    n_msm = 0
    single_mode = plan.start_single
    probe = PROBE_ROWS
    size = probe if plan.start_single else plan.max_batch
    start = 0
    while start < n_trusted:
        idx = trusted[start:start + size]
        if single_mode:
            verify_rows_single(idx, rows, keys, prep, out)
        else:
            n_msm += batch_verify_rows(idx, z, rows, keys, prep, out)
        n_bad = 0
        for t in range(idx.shape[0]):
            if not out[idx[t]]:
                n_bad += 1
        if n_bad > SINGLE_MODE_SHARE * idx.shape[0]:
            if not single_mode and start > 0:
                probe = min(2 * probe, plan.max_batch)  # a probe back to batches failed
            single_mode = True
            size = probe
        elif single_mode:
            single_mode = False
            size = PROBE_ROWS
        else:
            probe = PROBE_ROWS
            size = min(2 * size, plan.max_batch)
        start += idx.shape[0]
    return n_msm
