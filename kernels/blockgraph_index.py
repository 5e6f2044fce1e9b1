"""32-byte block hashes as dense indices: keys, ordering and an open-addressing hash table.

A hash travels through the kernels as a *key*: a row of four uint64 words holding its 32 bytes
read big-endian, so comparing keys word by word (``key_less``) is exactly the lexicographic
order of the 32-byte strings. ``engine.blockgraph`` converts ``(n, 32) uint8`` to ``(n, 4)``
keys with one NumPy view + byteswap, never a Python loop.

Hash table (linear probing, power-of-two capacity >= 2n, so the load factor is <= 1/2):

1. slot = mix64(k0 ^ mix64(k1 ^ mix64(k2 ^ mix64(k3)))) & mask -- every word takes part, so
   structured test hashes (``b"\\0" * 31 + bytes([i])``) spread as well as SHA-256 output;
2. probe slot, slot+1, ... until the key (full 32-byte compare) or an empty slot (-1) is found.

cost: one mix chain + expected < 2 probes per insert or lookup; the table is an int64 array of
``cap`` slots holding row numbers into the key array it was built from.

Nothing here knows about blocks or votes; blockgraph_blocks/votes/finality build on it.
"""
import numpy as np
from numba import njit, prange

__all__ = [
    "key_less",
    "key_equal",
    "key_is_zero",
    "table_capacity",
    "table_build_unique",
    "table_lookup",
    "table_lookup_many",
    "table_lookup_many_parallel",
    "argsort_keys",
]

_U64 = np.uint64
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


@njit(cache=True, nogil=True, inline="always")
def mix64(x):
    """splitmix64 finaliser: a bijection on uint64 with full avalanche."""
    x = (x + _GOLDEN)
    x = (x ^ (x >> _S30)) * _MIX1
    x = (x ^ (x >> _S27)) * _MIX2
    return x ^ (x >> _S31)


@njit(cache=True, nogil=True, inline="always")
def key_hash(keys, i):
    """Hash of key row i mixing all four words."""
    h = mix64(keys[i, 3])
    h = mix64(keys[i, 2] ^ h)
    h = mix64(keys[i, 1] ^ h)
    return mix64(keys[i, 0] ^ h)


@njit(cache=True, nogil=True, inline="always")
def key_equal(a, i, b, j):
    """a[i] == b[j] (all 32 bytes)."""
    return (a[i, 0] == b[j, 0] and a[i, 1] == b[j, 1]
            and a[i, 2] == b[j, 2] and a[i, 3] == b[j, 3])


@njit(cache=True, nogil=True, inline="always")
def key_less(a, i, b, j):
    """a[i] < b[j] in lexicographic byte order (keys are big-endian words)."""
    for w in range(4):
        if a[i, w] != b[j, w]:
            return a[i, w] < b[j, w]
    return False


@njit(cache=True, nogil=True, inline="always")
def key_is_zero(a, i):
    """a[i] is the all-zero hash (the genesis parent)."""
    return a[i, 0] == 0 and a[i, 1] == 0 and a[i, 2] == 0 and a[i, 3] == 0


@njit(cache=True, nogil=True)
def table_capacity(n):
    """Smallest power of two >= 2n (and >= 16)."""
    cap = 16
    while cap < 2 * n:
        cap *= 2
    return cap


@njit(cache=True, nogil=True)
def table_build_unique(keys):
    """Distinct keys of `keys` (n, 4).

    Returns (table, rep, inv): `table` the slots (row numbers of representatives, -1 empty),
    `rep[d]` the first row holding distinct key d (ids in order of first appearance), and
    `inv[i]` the distinct id of row i.
    """
    n = keys.shape[0]
    cap = table_capacity(n)
    mask = _U64(cap - 1)
    table = np.full(cap, -1, np.int64)
    slot_id = np.full(cap, -1, np.int64)
    rep = np.empty(n, np.int64)
    inv = np.empty(n, np.int64)
    nd = 0
    for i in range(n):
        s = np.int64(key_hash(keys, i) & mask)
        while True:
            r = table[s]
            if r < 0:
                table[s] = i
                slot_id[s] = nd
                rep[nd] = i
                inv[i] = nd
                nd += 1
                break
            if key_equal(keys, r, keys, i):
                inv[i] = slot_id[s]
                break
            s = (s + 1) & (cap - 1)
    return table, rep[:nd].copy(), inv


@njit(cache=True, nogil=True, inline="always")
def table_lookup(table, ref_keys, q, i):
    """Row of ref_keys equal to q[i], or -1 when absent."""
    cap = table.shape[0]
    s = np.int64(key_hash(q, i) & _U64(cap - 1))
    while True:
        r = table[s]
        if r < 0:
            return np.int64(-1)
        if key_equal(ref_keys, r, q, i):
            return r
        s = (s + 1) & (cap - 1)


@njit(cache=True, nogil=True)
def table_lookup_many(table, ref_keys, q):
    """table_lookup for every row of q: int64 array of rows of ref_keys (-1 when absent)."""
    n = q.shape[0]
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = table_lookup(table, ref_keys, q, i)
    return out


@njit(cache=True, nogil=True, parallel=True)
def table_lookup_many_parallel(table, ref_keys, q):
    """table_lookup_many with the probes split across threads (for >= ~10^5 queries)."""
    n = q.shape[0]
    out = np.empty(n, np.int64)
    for i in prange(n):
        out[i] = table_lookup(table, ref_keys, q, i)
    return out


@njit(cache=True, nogil=True)
def argsort_keys(keys, rows):
    """`rows` (int64) reordered so keys[rows] ascend lexicographically (ties keep no order:
    callers pass distinct keys).

    Sorts by the first word with NumPy's argsort, then fixes runs of equal first words (rare
    for real hashes, common for adversarial ones) with an insertion sort on the full key.
    """
    n = rows.shape[0]
    k0 = np.empty(n, np.uint64)
    for i in range(n):
        k0[i] = keys[rows[i], 0]
    order = np.argsort(k0)
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = rows[order[i]]
    i = 0
    while i < n:
        j = i + 1
        while j < n and keys[out[j], 0] == keys[out[i], 0]:
            j += 1
        if j - i > 1:
            for a in range(i + 1, j):
                x = out[a]
                b = a - 1
                while b >= i and key_less(keys, x, keys, out[b]):
                    out[b + 1] = out[b]
                    b -= 1
                out[b + 1] = x
        i = j
    return out
