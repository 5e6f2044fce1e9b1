"""Precomputed key tables (kernels.fixed_base) for eight keys at a time.

The key cache builds, for each key it keeps tables for, a comb of KEY_COMB_ROWS rows and the
odd multiples P, 3P, ..., 127P, both in affine Niels form (serial layout uint64[..., 3, 5]).
Building them is the same sequence of point operations for every key, so lane j of the x8
arithmetic builds key j's tables:
  1. the table's points in projective form, into scratch (comb: per row 7 additions, and
     256 / R doublings to the next row; odd multiples: 63 additions of 2P);
  2. Montgomery's trick per lane: prefix products of the Z's, one inversion, walking back;
  3. (y + x, y - x, 2dxy) of each point, written to that key's table.
Measured here: about six times faster than the serial builder, which matters when a large
validator set fills the table budget while a job runs.
"""
import numpy as np
from numba import njit

from kernels.edwards_x8 import ge8_add_cached, ge8_dbl, ge8_dbl_n, ge8_gather_extended, ge8_to_cached
from kernels.field25519x8 import (
    D2_LIMBS, fe8_add, fe8_carry, fe8_const, fe8_invert, fe8_mul, fe8_one, fe8_sub, fe8_to51,
)
from kernels.fixed_base import COMB_COLS
from kernels.lanes import LANES, lane, lanes_from_array, lanes_to_array

__all__ = ["build_key_tables_x8"]

_FE_WORDS = 10 * LANES


@njit(cache=True, nogil=True, inline="always")
def _put(scratch, slot, f):
    base = slot * _FE_WORDS
    for k in range(10):
        lanes_to_array(f[k], scratch, base + k * LANES)


@njit(cache=True, nogil=True, inline="always")
def _get(scratch, slot):
    base = slot * _FE_WORDS
    return (lanes_from_array(scratch, base), lanes_from_array(scratch, base + LANES),
            lanes_from_array(scratch, base + 2 * LANES), lanes_from_array(scratch, base + 3 * LANES),
            lanes_from_array(scratch, base + 4 * LANES), lanes_from_array(scratch, base + 5 * LANES),
            lanes_from_array(scratch, base + 6 * LANES), lanes_from_array(scratch, base + 7 * LANES),
            lanes_from_array(scratch, base + 8 * LANES), lanes_from_array(scratch, base + 9 * LANES))


@njit(cache=True, nogil=True)
def _put_point(xyz, t, P):
    _put(xyz, 3 * t, P[0])
    _put(xyz, 3 * t + 1, P[1])
    _put(xyz, 3 * t + 2, P[2])


@njit(cache=True, nogil=True)
def _write_niels(xyz, n_points, prefix, out, lane_rows, m):
    """out[lane_rows[j], t] = affine Niels of point t of lane j, for t < n_points, j < m
    (out viewed as (keys, n_points, 3, 5))."""
    run = fe8_one()
    for t in range(n_points):
        _put(prefix, t, run)
        run = fe8_mul(_get(xyz, 3 * t + 2), run)
    inv = fe8_invert(run)
    d2 = fe8_const(D2_LIMBS)
    for t in range(n_points - 1, -1, -1):
        zinv = fe8_mul(_get(prefix, t), inv)
        inv = fe8_mul(_get(xyz, 3 * t + 2), inv)
        x = fe8_mul(_get(xyz, 3 * t), zinv)
        y = fe8_mul(_get(xyz, 3 * t + 1), zinv)
        coords = (fe8_to51(fe8_carry(fe8_add(y, x))), fe8_to51(fe8_sub(y, x)),
                  fe8_to51(fe8_mul(fe8_mul(x, y), d2)))
        for c in range(3):
            limbs = coords[c]
            for j in range(m):
                for k in range(5):
                    out[lane_rows[j], t, c, k] = lane(limbs[k], j)


@njit(cache=True, nogil=True)
def build_key_tables_x8(points, combs, odds):
    """combs[i] / odds[i] = the comb (R rows) and the odd multiples of points[i] (Z = 1),
    eight keys per step (the last key repeated in unused lanes)."""
    n = points.shape[0]
    rows = combs.shape[1]
    n_comb = rows * COMB_COLS
    n_odd = odds.shape[1]
    size = max(n_comb, n_odd)
    xyz = np.empty(3 * size * _FE_WORDS, dtype=np.uint64)
    prefix = np.empty(size * _FE_WORDS, dtype=np.uint64)
    lane_rows = np.empty(LANES, dtype=np.int64)
    flat = points.reshape(-1)
    comb_view = combs.reshape((n, n_comb, 3, 5))
    for start in range(0, n, LANES):
        m = min(LANES, n - start)
        for j in range(LANES):
            lane_rows[j] = start + min(j, m - 1)
        P = ge8_gather_extended(flat, lanes_from_array(lane_rows.view(np.uint64), 0))
        base = P
        for i in range(rows):
            step = ge8_to_cached(base)
            acc = base
            for j in range(COMB_COLS):
                if j > 0:
                    acc = ge8_add_cached(acc, step)
                _put_point(xyz, i * COMB_COLS + j, acc)
            if i + 1 < rows:
                base = ge8_dbl_n(base, 256 // rows)
        _write_niels(xyz, n_comb, prefix, comb_view, lane_rows, m)
        step = ge8_to_cached(ge8_dbl(P))
        acc = P
        for t in range(n_odd):
            if t > 0:
                acc = ge8_add_cached(acc, step)
            _put_point(xyz, t, acc)
        _write_niels(xyz, n_odd, prefix, odds, lane_rows, m)
