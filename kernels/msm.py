"""Multi-scalar multiplication: Q = sum s_i P_i over four groups of points.

Batch verification needs sum z_i R_i (128-bit z_i: the "short" group), sum c_j A_j over the
keys (253-bit scalars) and c_B B. Keys come in two kinds: "tabled" ones, which the key cache
saw before and holds odd multiples 1..127 of (kernels.fixed_base.odd_multiples_build), and
"long" ones without a table. B always has its table (BASE_NIELS_ODD). Tabled points add the
digits of a width-8 NAF along the shared doubling chain (~253/9 madds each, no table to
build); the other groups go through Straus or Pippenger below, and short scalars pay only for
the windows their bits occupy. Generic input points are extended points with Z = 1 (freshly
decompressed or from the key cache), uint64[n, 4, 5].

Straus (interleaved sliding windows; Straus 1964, as in curve25519-dalek `straus.rs`):
  1. per point, the table P, 3P, 5P, ..., 15P in cached form        (8 adds per point)
  2. per scalar, its width-5 NAF (odd digits |d| <= 15, ~1 nonzero in 6)
  3. Q = 0; for bit i from the top: Q = 2Q; for each point with digit d != 0: Q += d*P
  cost ~ n*(8 + bits/6) adds + 253 doublings: best for a few dozen points.

Pippenger (bucket method; Bernstein et al., "Faster batch forgery identification", sec. 4,
and dalek `pippenger.rs`):
  1. per scalar, signed radix-2^c digits d_w in [-2^(c-1), 2^(c-1))
  2. for each window w from the top: Q = [2^c]Q; put every point with d_w != 0 into
     bucket |d_w| (madd or msub, 7M); window sum = sum_b b*bucket_b computed as a running
     sum from the top bucket down (2 full adds per bucket); Q += window sum
  cost(c) ~ ns*ceil(129/c) + nl*ceil(254/c) madds + ceil(254/c) * 2^(c-1) * 2 adds
  The window c minimizes that estimate (`pippenger_window`); large batches get c ~ 10-12.
"""
import numpy as np
from numba import njit

from kernels.edwards import (
    BASE_NIELS_ODD, ge_add, ge_add_cached, ge_dbl, ge_identity, ge_load, ge_madd, ge_msub,
    ge_store, ge_sub_cached, ge_to_cached, niels_load,
)
from kernels.field25519 import FE_D2, fe_add, fe_carry, fe_mul, fe_sub
from kernels.scalar25519 import sc_at, sc_signed_digits, sc_wnaf

__all__ = ["msm_straus", "msm_pippenger", "pippenger_window", "to_affine_niels_rows"]

SHORT_BITS = 128
LONG_BITS = 253
_STRAUS_MAX_DIGIT = 15
_STRAUS_TABLE = 8
# Width of the precomputed tables of B and of cached keys: odd multiples up to 127P.
TABLE_MAX_DIGIT = 127


@njit(cache=True, nogil=True)
def to_affine_niels_rows(points, out):
    """Affine Niels (y+x, y-x, 2dxy) of extended points with Z = 1, row by row."""
    for i in range(points.shape[0]):
        X, Y, _, T = ge_load(points, i)
        ypx = fe_carry(fe_add(Y, X))
        ymx = fe_sub(Y, X)
        t2d = fe_mul(T, FE_D2)
        for k in range(5):
            out[i, 0, k] = ypx[k]
            out[i, 1, k] = ymx[k]
            out[i, 2, k] = t2d[k]


@njit(cache=True, nogil=True)
def _straus_tables(points, tables, offset):
    """tables[offset + i, j] = (2j+1) * points[i] in cached form (4 coordinates, stored
    like an extended point, so ge_store/ge_load move them)."""
    for i in range(points.shape[0]):
        P = ge_load(points, i)
        P2 = ge_to_cached(ge_dbl(P))
        acc = P
        ge_store(tables[offset + i], 0, ge_to_cached(acc))
        for j in range(1, _STRAUS_TABLE):
            acc = ge_add_cached(acc, P2)
            ge_store(tables[offset + i], j, ge_to_cached(acc))


@njit(cache=True, nogil=True)
def _add_niels_digit(Q, table, d):
    """Q + d*P for a nonzero odd digit d, from P's table of odd multiples (affine Niels)."""
    if d > 0:
        return ge_madd(Q, niels_load(table, d >> 1))
    return ge_msub(Q, niels_load(table, (-d) >> 1))


@njit(cache=True, nogil=True)
def _add_tabled_bit(Q, bit, base_naf, tab_naf, tables, tab_ids):
    """Add the digits at `bit` of B and of every tabled point (width-8 NAFs, madds)."""
    d = base_naf[bit]
    if d != 0:
        Q = _add_niels_digit(Q, BASE_NIELS_ODD, d)
    for t in range(tab_ids.shape[0]):
        d = tab_naf[t, bit]
        if d != 0:
            Q = _add_niels_digit(Q, tables[tab_ids[t]], d)
    return Q


@njit(cache=True, nogil=True)
def _tabled_nafs(base_scalar, tab_scalars):
    """Width-8 NAFs of B's scalar and of each tabled point's scalar; and the top nonzero bit."""
    base_naf = np.empty(256, dtype=np.int8)
    sc_wnaf((base_scalar[0], base_scalar[1], base_scalar[2], base_scalar[3]), TABLE_MAX_DIGIT,
            base_naf)
    tab_naf = np.empty((tab_scalars.shape[0], 256), dtype=np.int8)
    for t in range(tab_scalars.shape[0]):
        sc_wnaf(sc_at(tab_scalars, t), TABLE_MAX_DIGIT, tab_naf[t])
    top = _top_bit(base_naf, -1)
    for t in range(tab_scalars.shape[0]):
        top = _top_bit(tab_naf[t], top)
    return base_naf, tab_naf, top


@njit(cache=True, nogil=True)
def _top_bit(naf, top):
    for b in range(255, top, -1):
        if naf[b] != 0:
            return b
    return top


@njit(cache=True, nogil=True)
def msm_straus(short_points, short_scalars, long_points, long_scalars, base_scalar, tables,
               tab_ids, tab_scalars):
    """sum short_scalars[i] * short_points[i] + sum long_scalars[j] * long_points[j]
       + base_scalar * B + sum tab_scalars[t] * P_t, where P_t's odd multiples are
       tables[tab_ids[t]] (see kernels.fixed_base.odd_multiples_build).

    Scalars are uint64[4] limb rows (short ones < 2^128, the others < 2^253).
    """
    ns = short_points.shape[0]
    n = ns + long_points.shape[0]
    point_tables = np.empty((n, _STRAUS_TABLE, 4, 5), dtype=np.uint64)
    _straus_tables(short_points, point_tables, 0)
    _straus_tables(long_points, point_tables, ns)
    naf = np.empty((n, 256), dtype=np.int8)
    base_naf, tab_naf, top = _tabled_nafs(base_scalar, tab_scalars)
    for i in range(n):
        s = sc_at(short_scalars, i) if i < ns else sc_at(long_scalars, i - ns)
        sc_wnaf(s, _STRAUS_MAX_DIGIT, naf[i])
        top = _top_bit(naf[i], top)
    Q = ge_identity()
    for b in range(top, -1, -1):
        if b != top:
            Q = ge_dbl(Q)
        for i in range(n):
            d = naf[i, b]
            if d > 0:
                Q = ge_add_cached(Q, ge_load(point_tables[i], d >> 1))
            elif d < 0:
                Q = ge_sub_cached(Q, ge_load(point_tables[i], (-d) >> 1))
        Q = _add_tabled_bit(Q, b, base_naf, tab_naf, tables, tab_ids)
    return Q


@njit(cache=True, nogil=True)
def pippenger_window(n_short, n_long):
    """The window width c minimizing the cost estimate in the module docstring."""
    best_c = 4
    best = np.inf
    for c in range(4, 17):
        w_short = (SHORT_BITS + 1 + c - 1) // c
        w_long = (LONG_BITS + 1 + c - 1) // c
        madds = n_short * w_short + n_long * w_long
        # a full add costs ~9M vs 7M for a madd; each bucket is also reset per window
        bucket_work = w_long * (1 << (c - 1)) * 2.5
        cost = madds + bucket_work
        if cost < best:
            best = cost
            best_c = c
    return best_c


@njit(cache=True, nogil=True)
def _bucket_add(buckets, d, niels, i):
    if d > 0:
        b = d - 1
        ge_store(buckets, b, ge_madd(ge_load(buckets, b), niels_load(niels, i)))
    elif d < 0:
        b = -d - 1
        ge_store(buckets, b, ge_msub(ge_load(buckets, b), niels_load(niels, i)))


@njit(cache=True, nogil=True)
def msm_pippenger(short_points, short_scalars, long_points, long_scalars, base_scalar, tables,
                  tab_ids, tab_scalars, c):
    """Same result as `msm_straus`: buckets (window c) for the short and long groups, while
    B and the tabled points add their width-8 NAF digits along the same doubling chain."""
    ns = short_points.shape[0]
    nl = long_points.shape[0]
    w_short = (SHORT_BITS + 1 + c - 1) // c
    w_long = (LONG_BITS + 1 + c - 1) // c
    short_niels = np.empty((ns, 3, 5), dtype=np.uint64)
    long_niels = np.empty((nl, 3, 5), dtype=np.uint64)
    to_affine_niels_rows(short_points, short_niels)
    to_affine_niels_rows(long_points, long_niels)
    short_digits = np.empty((ns, w_short), dtype=np.int32)
    long_digits = np.empty((nl, w_long), dtype=np.int32)
    for i in range(ns):
        sc_signed_digits(sc_at(short_scalars, i), c, w_short, short_digits, i)
    for i in range(nl):
        sc_signed_digits(sc_at(long_scalars, i), c, w_long, long_digits, i)
    base_naf, tab_naf, _ = _tabled_nafs(base_scalar, tab_scalars)

    n_buckets = 1 << (c - 1)
    buckets = np.empty((n_buckets, 4, 5), dtype=np.uint64)
    identity = ge_identity()
    Q = identity
    # Horner over bits from the top: Q = 2Q + (tabled digits at this bit) + (the window sum
    # when this bit starts a window). The top window may reach past bit 255.
    top_bit = max(w_long * c, 256) - 1
    for bit in range(top_bit, -1, -1):
        if bit != top_bit:
            Q = ge_dbl(Q)
        if bit < 256:
            Q = _add_tabled_bit(Q, bit, base_naf, tab_naf, tables, tab_ids)
        if bit % c != 0:
            continue
        w = bit // c
        if w >= w_long:
            continue
        for b in range(n_buckets):
            ge_store(buckets, b, identity)
        for i in range(nl):
            _bucket_add(buckets, long_digits[i, w], long_niels, i)
        if w < w_short:
            for i in range(ns):
                _bucket_add(buckets, short_digits[i, w], short_niels, i)
        # sum_b (b+1) * bucket_b as a running sum from the top bucket down.
        running = identity
        window_sum = identity
        for b in range(n_buckets - 1, -1, -1):
            running = ge_add(running, ge_load(buckets, b))
            window_sum = ge_add(window_sum, running)
        Q = ge_add(Q, window_sum)
    return Q
