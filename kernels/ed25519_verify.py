"""Ed25519 verification under ZIP-215, one row at a time and as a batch.

The rule (DESIGN section 4): decode A and R with ZIP-215 decompression, require S < L,
k = SHA-512(R_bytes || A_bytes || M) mod L, and accept iff [8]([S]B - R - [k]A) = 0.

Batch (random linear combination, per chunk of rows):
  1. `prepare_rows`: per row check S < L, decompress R, hash k. Malformed rows are marked
     invalid here and never enter an equation.
  2. `batch_verify_rows`: with 128-bit z_i, the equation
        [8]( -(sum z_i S_i) B + sum z_i R_i + sum_keys (sum_{i: key} z_i k_i) A_key ) = 0
     coalesces every row of a key into one point (keys are pre-indexed by the caller).
     sum z_i S_i and each per-key sum are accumulated in 512-bit form and reduced once.
  3. If it fails, bisect: compute the left half's [8]-sum explicitly; the right half's is
     the difference, so each level costs one half-size MSM (one bad row in a batch costs
     about 2x an all-good batch). Ranges of <= SINGLE_CHECK_ROWS rows are checked singly.
Single and batch agree on every input: both check the same cofactored equation, and a
failing batch never decides a row by itself -- it only narrows down where to look.
"""
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

__all__ = [
    "decompress_rows", "build_key_tables", "prepare_rows", "verify_rows_single",
    "batch_verify_rows", "batch_equation_holds", "verify_chunk", "STRAUS_MAX_TERMS", "SINGLE_CHECK_ROWS",
    "SINGLE_MODE_SHARE", "PROBE_ROWS",
]

# Batches of up to this many MSM terms use Straus, larger ones Pippenger. Measured with
# scripts/bench_verify.py --msm-crossover (distinct keys): 129 terms 0.83 vs 0.93 ms,
# 193 terms 1.28 vs 1.25 ms, 257 terms 1.69 vs 1.56 ms.
STRAUS_MAX_TERMS = 192
# Bisection stops at ranges this small and checks each row on its own.
SINGLE_CHECK_ROWS = 4
# Above this share of invalid rows, single checks (with comb tables) are cheaper than
# locating the bad rows by bisection; probes of PROBE_ROWS rows re-measure the share.
# scripts/bench_verify.py --bad-share puts the crossover near 0.3%; erring low is cheaper
# (a needless single check costs ~2x a batched row, a needless bisection ~5x).
SINGLE_MODE_SHARE = 0.002
PROBE_ROWS = 1024


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
def prepare_rows(msg_data, msg_offsets, sigs, pks, row_ok, key_index, key_ok,
                 r_points, k_scalars, s_scalars):
    """Per-row work shared by single and batch checks.

    In: row_ok[i] False for rows already known malformed (wrong lengths); key_index[i]
    indexes key_ok/the caller's key points. Out: r_points (R decompressed), k_scalars,
    s_scalars, and row_ok cleared for S >= L, undecodable R or undecodable A.
    """
    digest = np.empty(64, dtype=np.uint8)
    for i in range(sigs.shape[0]):
        if not row_ok[i]:
            continue
        if not key_ok[key_index[i]]:
            row_ok[i] = False
            continue
        S = sc_load(sigs[i], 32)
        if not sc_is_canonical(S):
            row_ok[i] = False
            continue
        good, R = ge_decompress_zip215(sigs[i, 0:32])
        if not good:
            row_ok[i] = False
            continue
        ge_store(r_points, i, R)
        sc_store(s_scalars, i, S)
        sha512_ram_row(sigs[i], pks[i], msg_data, msg_offsets[i], msg_offsets[i + 1], digest)
        sc_store(k_scalars, i, sc_reduce_bytes64(digest))


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
def verify_rows_single(rows, row_ok, key_index, key_points, key_tab, combs, r_points,
                       k_scalars, s_scalars, out):
    """out[i] = the single ZIP-215 verdict for each i in rows (prepared rows only).

    A key with precomputed tables (key_tab[key] >= 0, an index into combs) is checked as
    [8]([S]B - [k]A - R) with two fixed-base combs (128 madds, no doubling chain);
    otherwise by the joint sliding window.
    """
    naf_s = np.empty(256, dtype=np.int8)
    naf_k = np.empty(256, dtype=np.int8)
    digits = np.empty(64, dtype=np.int8)
    a_table = np.empty((8, 4, 5), dtype=np.uint64)
    for t in range(rows.shape[0]):
        i = rows[t]
        if not row_ok[i]:
            out[i] = False
            continue
        S = sc_at(s_scalars, i)
        k = sc_at(k_scalars, i)
        key = key_index[i]
        R = ge_load(r_points, i)
        if key_tab[key] >= 0:
            Q = ge_sub(comb_mul(BASE_COMB, S, digits), comb_mul(combs[key_tab[key]], k, digits))
            out[i] = ge_is_identity(ge_mul_by_cofactor(ge_sub(Q, R)))
        else:
            out[i] = _row_equation_is_zero(R, ge_load(key_points, key), S, k, naf_s, naf_k,
                                           a_table)


@njit(cache=True, nogil=True)
def batch_equation_sum(rows, z, key_index, key_points, key_tab, odds, r_points, k_scalars,
                       s_scalars, key_acc, key_mark):
    """[8]( -(sum z_i S_i) B + sum z_i R_i + sum_keys c_key A_key ) over the given rows.

    Keys with precomputed tables (key_tab[key] >= 0, an index into odds) enter a Straus MSM
    as tabled points. key_acc (n_keys, 8) must be zero and key_mark (n_keys,) all -1 on entry;
    both are left that way on return.
    """
    n = rows.shape[0]
    acc_s = np.zeros(8, dtype=np.uint64)
    used = np.empty(n, dtype=np.int64)
    n_used = 0
    n_tabled = 0
    short_points = np.empty((n, 4, 5), dtype=np.uint64)
    short_scalars = np.zeros((n, 4), dtype=np.uint64)
    for t in range(n):
        i = rows[t]
        zi = (z[i, 0], z[i, 1])
        sc_acc_mul(acc_s, sc_at(s_scalars, i), zi)
        key = key_index[i]
        if key_mark[key] < 0:
            key_mark[key] = n_used
            used[n_used] = key
            n_used += 1
            if key_tab[key] >= 0:
                n_tabled += 1
        sc_acc_mul(key_acc[key], sc_at(k_scalars, i), zi)
        for j in range(4):
            for q in range(5):
                short_points[t, j, q] = r_points[i, j, q]
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
        if use_straus and key_tab[key] >= 0:
            tab_ids[n_tabled] = key_tab[key]
            sc_store(tab_scalars, n_tabled, c_key)
            n_tabled += 1
        else:
            long_points[n_long] = key_points[key]
            sc_store(long_scalars, n_long, c_key)
            n_long += 1
        key_acc[key, :] = 0
        key_mark[key] = -1
    if use_straus:
        Q = msm_straus(short_points, short_scalars, long_points, long_scalars, base_scalar,
                       odds, tab_ids, tab_scalars)
    else:
        c = pippenger_window(n, n_long)
        Q = msm_pippenger(short_points, short_scalars, long_points, long_scalars, base_scalar,
                          odds, tab_ids, tab_scalars, c)
    return ge_mul_by_cofactor(Q)


@njit(cache=True, nogil=True)
def batch_equation_holds(rows, z, key_index, key_points, key_tab, odds, r_points, k_scalars,
                         s_scalars):
    """Whether the batch equation holds over the given (prepared, well-formed) rows."""
    n_keys = key_points.shape[0]
    key_acc = np.zeros((n_keys, 8), dtype=np.uint64)
    key_mark = np.full(n_keys, -1, dtype=np.int64)
    Q = batch_equation_sum(rows, z, key_index, key_points, key_tab, odds, r_points, k_scalars,
                           s_scalars, key_acc, key_mark)
    return ge_is_identity(Q)


@njit(cache=True, nogil=True)
def batch_verify_rows(rows, z, row_ok, key_index, key_points, key_tab, combs, odds, r_points,
                      k_scalars, s_scalars, out):
    """out[i] for each i in rows: batch check, then bisection to pin down invalid rows.

    rows must hold only rows with row_ok True (prepared). Returns the number of MSMs run.
    """
    n_keys = key_points.shape[0]
    key_acc = np.zeros((n_keys, 8), dtype=np.uint64)
    key_mark = np.full(n_keys, -1, dtype=np.int64)
    m = rows.shape[0]
    if m == 0:
        return 0
    # A stack of row ranges [lo, hi) with the [8]-sum of their equation already known.
    cap = 2 * 64 + m
    stack_lo = np.empty(cap, dtype=np.int64)
    stack_hi = np.empty(cap, dtype=np.int64)
    stack_sum = np.empty((cap, 4, 5), dtype=np.uint64)
    stack_lo[0] = 0
    stack_hi[0] = m
    ge_store(stack_sum, 0, batch_equation_sum(rows, z, key_index, key_points, key_tab, odds,
                                              r_points, k_scalars, s_scalars, key_acc,
                                              key_mark))
    n_msm = 1
    top = 1
    while top > 0:
        top -= 1
        lo = stack_lo[top]
        hi = stack_hi[top]
        total = ge_load(stack_sum, top)
        if ge_is_identity(total):
            for t in range(lo, hi):
                out[rows[t]] = True
            continue
        if hi - lo <= SINGLE_CHECK_ROWS:
            verify_rows_single(rows[lo:hi], row_ok, key_index, key_points, key_tab, combs,
                               r_points, k_scalars, s_scalars, out)
            continue
        mid = (lo + hi) // 2
        left = batch_equation_sum(rows[lo:mid], z, key_index, key_points, key_tab, odds,
                                  r_points, k_scalars, s_scalars, key_acc, key_mark)
        n_msm += 1
        stack_lo[top] = lo
        stack_hi[top] = mid
        ge_store(stack_sum, top, left)
        stack_lo[top + 1] = mid
        stack_hi[top + 1] = hi
        ge_store(stack_sum, top + 1, ge_sub(total, left))
        top += 2
    return n_msm


@njit(cache=True, nogil=True)
def verify_chunk(msg_data, msg_offsets, sigs, pks, row_ok, key_index, key_points, key_ok,
                 key_tab, combs, odds, z, use_batch, max_batch, start_single, out):
    """Verdicts for a chunk of rows into out; the whole pipeline for one thread.

    row_ok (in/out): False for rows already known malformed. With use_batch False every
    row is checked singly. With use_batch True rows go through the batch equation,
    adaptively: locating k bad rows in a failed batch of m costs about (log2(k) + 1) / 2
    extra MSMs over shrinking subsets, which beats single checks (comb tables) only while
    bad rows are rare (measured crossover: 0.1-0.5% bad, scripts/bench_verify.py
    --bad-share). So:
      - batches start at max_batch rows (or in single mode when start_single says the
        caller has seen many bad rows lately);
      - after a batch whose share of invalid rows exceeds SINGLE_MODE_SHARE, rows are
        checked singly, PROBE_ROWS at a time;
      - a probe under the share returns to batches, starting at PROBE_ROWS rows and
        doubling after each clean batch up to max_batch.
    Returns the number of MSMs run.
    """
    n = sigs.shape[0]
    r_points = np.empty((n, 4, 5), dtype=np.uint64)
    k_scalars = np.empty((n, 4), dtype=np.uint64)
    s_scalars = np.empty((n, 4), dtype=np.uint64)
    prepare_rows(msg_data, msg_offsets, sigs, pks, row_ok, key_index, key_ok,
                 r_points, k_scalars, s_scalars)
    out[:] = False
    good = np.flatnonzero(row_ok)
    if not use_batch or good.shape[0] < 2:
        verify_rows_single(good, row_ok, key_index, key_points, key_tab, combs, r_points,
                           k_scalars, s_scalars, out)
        return 0
    n_msm = 0
    single_mode = start_single
    size = PROBE_ROWS if start_single else max_batch
    start = 0
    while start < good.shape[0]:
        rows = good[start:start + size]
        if single_mode:
            verify_rows_single(rows, row_ok, key_index, key_points, key_tab, combs, r_points,
                               k_scalars, s_scalars, out)
        else:
            n_msm += batch_verify_rows(rows, z, row_ok, key_index, key_points, key_tab, combs,
                                       odds, r_points, k_scalars, s_scalars, out)
        n_bad = 0
        for t in range(rows.shape[0]):
            if not out[rows[t]]:
                n_bad += 1
        if n_bad > SINGLE_MODE_SHARE * rows.shape[0]:
            single_mode = True
            size = PROBE_ROWS
        elif single_mode:
            single_mode = False
            size = PROBE_ROWS
        else:
            size = min(2 * size, max_batch)
        start += rows.shape[0]
    return n_msm
