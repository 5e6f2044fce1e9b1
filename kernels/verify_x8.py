"""Ed25519 (ZIP-215) work on eight rows at once: R decompression and single checks.

Both run the same instructions for every row, so lane j of the x8 arithmetic
(kernels.field25519x8, kernels.edwards_x8) simply carries row j of a group of eight.

Single check of a row (the rule of kernels.ed25519_verify):  [8]([S]B - [k]A - R) = 0.
k is written in signed radix 16, k = sum_{i<64} e_i 16^i with e_i in [-8, 8]
(`kernels.fixed_base.comb_digits`), S in signed radix 256, S = sum_{w<32} f_w 256^w with f_w
in [-128, 128) (`kernels.scalar25519.sc_signed_bytes`), and both multiplications share one
Horner chain of radix-16 steps (f_w sits at every other step):

  keys with a comb (kernels.fixed_base: T_A[i][j] = (j+1) 2^(32 i) A, 8 rows), B from its
  byte comb (T_B[i][j] = j 2^(32 i) B, 8 rows of 128):
     h = 0; for r = 7 .. 0:  h = 16 h (not before the first step)
                             if r is even: h += f_{4i + r/2} T_B[i]  for i < 8
                             h -= e_{8i + r} T_A[i]                  for i < 8
     cost = 32 + 64 madds + 28 doublings
  keys without one (A's multiples 0..8 are built per row: 7 additions and a doubling):
     h = 0; for i = 63 .. 0: h = 16 h; if i is even: h += f_{i/2} T_B[0]; h -= e_i A_table
     cost = 252 doublings + 32 madds + 64 additions + 8
then h - R, three doublings and the identity test. Lanes whose digit is 0 add the neutral
element, and negative digits negate the table entry by a lane mask, so no lane branches.

Table entries are gathered lane by lane from the serial layouts (affine Niels uint64[..., 3,
5]); A's per-row table is written in that layout too, row m * 8 + j holding lane j's m * A.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from kernels.edwards_x8 import (
    ge8_add_cached, ge8_cached_cneg, ge8_cached_identity, ge8_dbl, ge8_dbl_n,
    ge8_decompress_zip215, ge8_gather_extended, ge8_gather_niels, ge8_identity, ge8_is_identity,
    ge8_madd, ge8_mul_by_cofactor, ge8_niels_cneg, ge8_niels_identity, ge8_scatter, ge8_sub,
    ge8_to_cached,
)
from kernels.fixed_base import BASE_BYTE_COMB, BYTE_COMB_COLS, COMB_COLS, comb_digits
from kernels.field8 import fe8_select
from kernels.lanes import (
    LANES, lane, lanes_eq, lanes_from_array, splat, with_lane,
    zero8,
)
from kernels.scalar25519 import sc_at, sc_signed_bytes

__all__ = ["decompress_rows_x8", "verify_rows_single_x8"]

_BASE_BYTES_FLAT = np.ascontiguousarray(BASE_BYTE_COMB).reshape(-1)
# Per-row tables of A: entries m * A for m = 0..8 in cached form, lane by lane.
_TABLE_ENTRIES = 9


@njit(cache=True, nogil=True, inline="always")
def _word(b, i, off):
    w = np.uint64(0)
    for k in range(8):
        w |= np.uint64(b[i, off + k]) << np.uint64(8 * k)
    return w


@njit(cache=True, nogil=True)
def decompress_rows_x8(encodings, rows, points, ok):
    """points[i] / ok[i] for each i in rows: ZIP-215 decompression of the 32-byte encoding
    encodings[i, 0:32], eight rows per step."""
    n = rows.shape[0]
    idx = np.empty(LANES, dtype=np.int64)
    for start in range(0, n, LANES):
        m = min(LANES, n - start)
        w0 = zero8()
        w1 = zero8()
        w2 = zero8()
        w3 = zero8()
        for j in range(LANES):
            i = rows[start + min(j, m - 1)]
            idx[j] = i
            w0 = with_lane(w0, j, _word(encodings, i, 0))
            w1 = with_lane(w1, j, _word(encodings, i, 8))
            w2 = with_lane(w2, j, _word(encodings, i, 16))
            w3 = with_lane(w3, j, _word(encodings, i, 24))
        good, P = ge8_decompress_zip215(w0, w1, w2, w3)
        ge8_scatter(P, points, idx, m)
        for j in range(m):
            ok[idx[j]] = lane(good, j) != 0


@njit(cache=True, nogil=True, inline="always")
def _digit_lanes(digits, k):
    """(|e|, |e| - 1 clamped at 0, negative mask, zero mask) of digit k of each lane."""
    mag = zero8()
    neg = zero8()
    for j in range(LANES):
        d = np.int64(digits[j, k])
        if d < 0:
            mag = with_lane(mag, j, -d)
            neg = with_lane(neg, j, np.uint64(0xFFFFFFFFFFFFFFFF))
        else:
            mag = with_lane(mag, j, d)
    zero = lanes_eq(mag, zero8())
    index = mag - splat(1) + (zero & splat(1))
    return mag, index, neg, zero


@njit(cache=True, nogil=True)
def _add_comb_digit(h, flat, row_base, digits, k, negate):
    """h + e*T[row] (or h - e*T[row] when negate) for each lane's digit e = digits[lane, k];
    row_base[j] is the entry index of row T[row][0] of lane j's table."""
    _, index, neg, zero = _digit_lanes(digits, k)
    N = ge8_gather_niels(flat, row_base + index)
    N = ge8_niels_cneg(neg ^ negate, N)
    one = ge8_niels_identity()
    N = (fe8_select(zero, one[0], N[0]), fe8_select(zero, one[1], N[1]),
         fe8_select(zero, one[2], N[2]))
    return ge8_madd(h, N)


class LaneGroup(NamedTuple):
    """Scratch of one group of eight rows: the row of each lane, the digits of its S (signed
    radix 256) and k (signed radix 16), and the entry of row 0 of its key's comb."""
    rows: np.ndarray  # int64[8]
    s_digits: np.ndarray  # int8[8, 32]
    k_digits: np.ndarray  # int8[8, 64]
    table_base: np.ndarray  # int64[8]


@njit(cache=True, nogil=True)
def _new_group():
    return LaneGroup(np.empty(LANES, dtype=np.int64), np.empty((LANES, 32), dtype=np.int8),
                     np.empty((LANES, 64), dtype=np.int8), np.empty(LANES, dtype=np.int64))


@njit(cache=True, nogil=True)
def _load_group(idx, start, m, rows, keys, prep, group):
    """Lane j <- row idx[start + j] (the last row repeated past m)."""
    rows_per_table = keys.combs.shape[1]
    for j in range(LANES):
        i = idx[start + min(j, m - 1)]
        group.rows[j] = i
        sc_signed_bytes(sc_at(prep.s_scalars, i), group.s_digits[j])
        comb_digits(sc_at(prep.k_scalars, i), group.k_digits[j])
        t = keys.table_of[rows.key_index[i]]
        group.table_base[j] = (t if t > 0 else 0) * rows_per_table * COMB_COLS


@njit(cache=True, nogil=True)
def _finish(h, r_points, group, m, out):
    """out[row] = whether [8](h - R) is the identity, for the first m lanes."""
    R = ge8_gather_extended(r_points.reshape(-1), lanes_from_array(group.rows.view(np.uint64), 0))
    ok = ge8_is_identity(ge8_mul_by_cofactor(ge8_sub(h, R)))
    for j in range(m):
        out[group.rows[j]] = lane(ok, j) != 0


@njit(cache=True, nogil=True)
def _single_tabled(idx, rows, keys, prep, out):
    """Single checks of rows whose keys have combs (R rows each): both combs and B's byte comb
    on one Horner chain (module doc)."""
    n = idx.shape[0]
    group = _new_group()
    comb_flat = keys.combs.reshape(-1)
    key_rows = keys.combs.shape[1]
    steps = 64 // key_rows
    all_ones = splat(0xFFFFFFFFFFFFFFFF)
    for start in range(0, n, LANES):
        m = min(LANES, n - start)
        _load_group(idx, start, m, rows, keys, prep, group)
        key_base = lanes_from_array(group.table_base.view(np.uint64), 0)
        h = ge8_identity()
        for r in range(steps - 1, -1, -1):
            if r < steps - 1:
                h = ge8_dbl_n(h, 4)
            if r % 2 == 0:
                for i in range(key_rows):  # B's byte 4i + r/2 sits at bit 32i + 4r
                    h = _add_comb_digit(h, _BASE_BYTES_FLAT, splat(BYTE_COMB_COLS * i),
                                        group.s_digits, 4 * i + r // 2, zero8())
            for i in range(key_rows):
                h = _add_comb_digit(h, comb_flat, key_base + splat(COMB_COLS * i),
                                    group.k_digits, steps * i + r, all_ones)
        _finish(h, prep.r_points, group, m, out)


@njit(cache=True, nogil=True)
def _build_a_tables(rows, keys, group, table, lane_ids):
    """table[m * 8 + j] = m * A_j in cached form (as four coordinates) for m = 0..8, lane j's
    key A_j (Z = 1)."""
    lane_keys = np.empty(LANES, dtype=np.int64)
    for j in range(LANES):
        lane_keys[j] = rows.key_index[group.rows[j]]
    A = ge8_gather_extended(keys.points.reshape(-1), lanes_from_array(lane_keys.view(np.uint64), 0))
    slots = np.empty(LANES, dtype=np.int64)
    P = A
    A_cached = ge8_to_cached(A)
    for m in range(_TABLE_ENTRIES):
        if m == 0:
            Q = ge8_cached_identity()
        elif m == 1:
            Q = A_cached
        else:
            P = ge8_dbl(P) if m == 2 else ge8_add_cached(P, A_cached)
            Q = ge8_to_cached(P)
        for j in range(LANES):
            slots[j] = m * LANES + j
        ge8_scatter(Q, table, slots, LANES)


@njit(cache=True, nogil=True, inline="always")
def _table_entry(table, mag, lane_ids):
    """Lane j of the result = lane j's entry mag[j] of a table built by _build_a_tables."""
    return ge8_gather_extended(table.reshape(-1), (mag << 3) + lane_ids)


@njit(cache=True, nogil=True)
def _single_untabled(idx, rows, keys, prep, out):
    """Single checks of rows whose keys have no comb: one radix-16 chain (module doc)."""
    n = idx.shape[0]
    group = _new_group()
    table = np.empty((_TABLE_ENTRIES * LANES, 4, 5), dtype=np.uint64)
    lane_ids = zero8()
    for j in range(LANES):
        lane_ids = with_lane(lane_ids, j, j)
    all_ones = splat(0xFFFFFFFFFFFFFFFF)
    for start in range(0, n, LANES):
        m = min(LANES, n - start)
        _load_group(idx, start, m, rows, keys, prep, group)
        _build_a_tables(rows, keys, group, table, lane_ids)
        h = ge8_identity()
        for k in range(63, -1, -1):
            if k < 63:
                h = ge8_dbl_n(h, 4)
            if k % 2 == 0:  # B's byte k/2 sits at bit 4k
                h = _add_comb_digit(h, _BASE_BYTES_FLAT, zero8(), group.s_digits, k // 2, zero8())
            mag, _, neg, _ = _digit_lanes(group.k_digits, k)
            h = ge8_add_cached(h, ge8_cached_cneg(neg ^ all_ones, _table_entry(table, mag, lane_ids)))
        _finish(h, prep.r_points, group, m, out)


@njit(cache=True, nogil=True)
def verify_rows_single_x8(idx, rows, keys, prep, out):
    """out[i] = the single ZIP-215 verdict for each i in idx (prepared, well-formed rows),
    eight at a time: rows of keys with combs first, then the others. The arguments are the
    named tuples of kernels.ed25519_verify (SignedRows, KeyTables, Prepared)."""
    tabled = np.empty(idx.shape[0], dtype=np.int64)
    plain = np.empty(idx.shape[0], dtype=np.int64)
    n_tabled = 0
    n_plain = 0
    for t in range(idx.shape[0]):
        i = idx[t]
        if keys.table_of[rows.key_index[i]] >= 0:
            tabled[n_tabled] = i
            n_tabled += 1
        else:
            plain[n_plain] = i
            n_plain += 1
    if n_tabled:
        _single_tabled(tabled[:n_tabled], rows, keys, prep, out)
    if n_plain:
        _single_untabled(plain[:n_plain], rows, keys, prep, out)
