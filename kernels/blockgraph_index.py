"""32-byte block hashes as dense indices: keys, ordering and an open-addressing hash table.

A hash travels through the kernels as a *key*: a row of four uint64 words holding its 32 bytes
read big-endian, so comparing keys word by word (``key_less``) is exactly the lexicographic
order of the 32-byte strings. ``engine.consensus.blockgraph`` converts ``(n, 32) uint8`` to ``(n, 4)``
keys with one NumPy view + byteswap, never a Python loop.

Hash table (linear probing, power-of-two capacity >= 4n, so the load factor is <= 1/4):

1. slot = top bits of mix(k0 ^ k1*C1 ^ k2*C2 ^ k3*C3): every word takes part, so structured test
   hashes (``b"\\0" * 31 + bytes([i])``, shared 8-byte prefixes) spread as well as SHA-256
   output; the three multiplies are independent (short latency, unlike a chain of finalisers);
2. probe slot, slot+1, ... until the key (full 32-byte compare) or an empty slot (-1) is found.

cost: a few multiplies + expected ~1.1 probes per insert or lookup. The low load factor is what
makes lookups fast: a second probe is a mispredicted branch (measured: 1M lookups into a 100K
table take ~10 ms at load 1/2, ~6.5 ms at load 1/4). The table is an int64 array of ``cap``
slots holding row numbers into the key array it was built from.

Nothing here knows about blocks or votes; blockgraph_blocks/votes/finality build on it.
"""
import numpy as np
from numba import njit

__all__ = [
    "key_less",
    "key_equal",
    "key_is_zero",
    "table_capacity",
    "table_build_unique",
    "table_empty",
    "table_insert_distinct",
    "table_build",
    "table_shift",
    "table_probe",
    "table_lookup",
    "table_lookup_many",
    "argsort_keys",
]

_U64 = np.uint64
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xC2B2AE3D27D4EB4F)
_C3 = np.uint64(0x165667B19E3779F9)
_C4 = np.uint64(0xD6E8FEB86659FD93)
_S32 = np.uint64(32)


@njit(cache=True, nogil=True, inline="always")
def key_hash(keys, i):
    """64-bit hash of key row i; its *top* bits pick the slot (a multiply moves every input bit
    into the top bits, not into the low ones)."""
    x = keys[i, 0] ^ (keys[i, 1] * _C1) ^ (keys[i, 2] * _C2) ^ (keys[i, 3] * _C3)
    return (x ^ (x >> _S32)) * _C4


@njit(cache=True, nogil=True, inline="always")
def _shift(cap):
    """64 - log2(cap) for a power-of-two capacity: key_hash >> _shift(cap) is the home slot."""
    bits = 0
    while (np.int64(1) << bits) < cap:
        bits += 1
    return _U64(64 - bits)


@njit(cache=True, nogil=True, inline="always")
def table_shift(table):
    """The shift that turns key_hash into a home slot of `table` (hoist it out of loops)."""
    return _shift(table.shape[0])


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
    """Smallest power of two >= 4n (and >= 16)."""
    cap = 16
    while cap < 4 * n:
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
    shift = _shift(cap)
    table = np.full(cap, -1, np.int64)
    rep = np.empty(n, np.int64)
    inv = np.empty(n, np.int64)
    nd = 0
    for i in range(n):
        s = np.int64(key_hash(keys, i) >> shift)
        while True:
            r = table[s]
            if r < 0:
                table[s] = i
                rep[nd] = i
                inv[i] = nd
                nd += 1
                break
            if key_equal(keys, r, keys, i):
                inv[i] = inv[r]  # r is the representative: its id was set on insertion
                break
            s = (s + 1) & (cap - 1)
    return table, rep[:nd].copy(), inv


@njit(cache=True, nogil=True)
def table_insert_distinct(table, keys):
    """Insert every row of `keys` (known distinct) into an empty table with room for them."""
    shift = table_shift(table)
    mask = table.shape[0] - 1
    for i in range(keys.shape[0]):
        s = np.int64(key_hash(keys, i) >> shift)
        while table[s] >= 0:
            s = (s + 1) & mask
        table[s] = i


def table_empty(n):
    """An empty table (-1 everywhere) with room for n keys: table_capacity(n) slots.

    Allocated by NumPy, not inside a kernel: NumPy asks for transparent huge pages on large
    arrays and Numba's allocator does not (4 KiB first-touch faults cost ~1.5 ms per 8 MB).
    Plain Python (no kernel to load for it).
    """
    return np.full(max(16, 1 << (4 * n - 1).bit_length()), -1, np.int64)


def table_build(keys):
    """The table of `keys` (n, 4) whose rows are known to be distinct (no equality checks)."""
    table = table_empty(keys.shape[0])
    table_insert_distinct(table, keys)
    return table


@njit(cache=True, nogil=True, inline="always")
def table_probe(table, shift, ref_keys, q, i):
    """Row of ref_keys equal to q[i], or -1 when absent (shift = table_shift(table))."""
    mask = table.shape[0] - 1
    s = np.int64(key_hash(q, i) >> shift)
    while True:
        r = table[s]
        if r < 0:
            return np.int64(-1)
        if key_equal(ref_keys, r, q, i):
            return r
        s = (s + 1) & mask


@njit(cache=True, nogil=True)
def table_lookup(table, ref_keys, q, i):
    """Row of ref_keys equal to q[i], or -1 when absent (one query; see table_lookup_many)."""
    return table_probe(table, table_shift(table), ref_keys, q, i)


@njit(cache=True, nogil=True)
def table_lookup_many(table, ref_keys, q):
    """table_lookup for every row of q: int64 array of rows of ref_keys (-1 when absent)."""
    n = q.shape[0]
    out = np.empty(n, np.int64)
    shift = table_shift(table)
    for i in range(n):
        out[i] = table_probe(table, shift, ref_keys, q, i)
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
