"""SHA-512 (FIPS 180-4) in Numba, for hashing whole columns of messages without the GIL.

Ed25519 verification needs k = SHA-512(R || A || M) mod L for every row. hashlib holds the GIL
for short inputs and costs a Python call per row; these kernels hash a whole column in one
nogil call, and the R || A || M variant reads the three pieces where they lie (no concatenated
buffer per row).

Algorithm (FIPS 180-4 section 6.4), for a byte stream of length n:
  1. State H[0..7] = the eight initial words (fractional parts of sqrt of the first 8 primes).
  2. For each full 128-byte block of the stream: compress(H, block).
  3. Tail: the remaining n mod 128 bytes, then 0x80, then zeros, then the bit length 8*n as a
     128-bit big-endian integer, so the tail becomes one block (n mod 128 <= 111) or two
     (n mod 128 >= 112).
  4. The digest is H[0..7] written big-endian (64 bytes).
compress(H, block):
  1. W[0..15] = the block as 16 big-endian 64-bit words;
     W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16] for t = 16..79.
  2. a..h = H[0..7]; 80 rounds of
       T1 = h + S1(e) + Ch(e, f, g) + K[t] + W[t];  T2 = S0(a) + Maj(a, b, c)
       (h, g, f, e, d, c, b, a) = (g, f, e, d + T1, c, b, a, T1 + T2)
  3. H[i] += (a..h)[i]. All arithmetic is mod 2^64 (numba uint64 wraps).

Cost model: compress = 64 schedule steps + 80 rounds, about 40 uint64 ops per round, so a
message of n bytes costs ceil((n + 17) / 128) compressions; R || A || M with a 110-byte message
(174 bytes) is exactly 2 compressions.

The 8 working variables live in uint64 locals, the schedule in an 80-word scratch array that
the caller allocates once per column (not per row). No byte is copied: each block's 16 words
are read big-endian from whichever of the (up to three) input pieces holds them, and the
padding words are generated on the fly. K is a module-level np.uint64 array, which numba
freezes into the compiled code as a constant. Every operand is uint64: mixing uint64 with int64
makes numba fall back to float64, so shift counts are np.uint64 too.

Measured here (2-core x86-64, shared, best of 5): ~520 ns per 174-byte R || A || M row in
sha512_ram_columns, i.e. ~250 ns per compression, against ~500 ns per row for a hashlib loop
over prebuilt bytes (OpenSSL's per-block speed plus ~100 ns of Python per call); the column
kernel runs without the GIL, so threads scale it. `PYTHONPATH=. python tests/test_sha512.py`
reprints the numbers. Helpers are plain @njit, not inline="always": numba's IR-level inlining
of the word loader made it ~10x slower than letting LLVM inline it. A multi-buffer (several
rows per SIMD lane) version would be the next step if hashing ever shows in profiles.
"""

import numpy as np
from numba import njit

__all__ = [
    "sha512_row",
    "sha512_ram_row",
    "sha512_columns",
    "sha512_ram_columns",
]

_K = np.array(
    [
        0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc,
        0x3956c25bf348b538, 0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118,
        0xd807aa98a3030242, 0x12835b0145706fbe, 0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2,
        0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235, 0xc19bf174cf692694,
        0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
        0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5,
        0x983e5152ee66dfab, 0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4,
        0xc6e00bf33da88fc2, 0xd5a79147930aa725, 0x06ca6351e003826f, 0x142929670a0e6e70,
        0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed, 0x53380d139d95b3df,
        0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
        0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30,
        0xd192e819d6ef5218, 0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8,
        0x19a4c116b8d2d0c8, 0x1e376c085141ab53, 0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8,
        0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373, 0x682e6ff3d6b2b8a3,
        0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
        0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b,
        0xca273eceea26619c, 0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178,
        0x06f067aa72176fba, 0x0a637dc5a2c898a6, 0x113f9804bef90dae, 0x1b710b35131c471b,
        0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc, 0x431d67c49c100d4c,
        0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
    ],
    dtype=np.uint64,
)

_H0 = np.array(
    [
        0x6A09E667F3BCC908,
        0xBB67AE8584CAA73B,
        0x3C6EF372FE94F82B,
        0xA54FF53A5F1D36F1,
        0x510E527FADE682D1,
        0x9B05688C2B3E6C1F,
        0x1F83D9ABFB41BD6B,
        0x5BE0CD19137E2179,
    ],
    dtype=np.uint64,
)


@njit(cache=True, nogil=True)
def _rotr(x, n):
    """Rotate the uint64 x right by n (a uint64 in 1..63)."""
    return (x >> n) | (x << (np.uint64(64) - n))


@njit(cache=True, nogil=True)
def _round(a, b, c, d, e, f, g, h, kw):
    """One SHA-512 round on working variables a..h with kw = K[t] + W[t].

    Returns (d + T1, T1 + T2): the new e and the new a. The caller renames the variables
    instead of shifting them (a round's new a is the next round's a argument, and so on), so
    eight calls make a full rotation of (a, ..., h).
    """
    t1 = (
        h
        + (_rotr(e, np.uint64(14)) ^ _rotr(e, np.uint64(18)) ^ _rotr(e, np.uint64(41)))
        + ((e & f) ^ (~e & g))
        + kw
    )
    t2 = (_rotr(a, np.uint64(28)) ^ _rotr(a, np.uint64(34)) ^ _rotr(a, np.uint64(39))) + (
        (a & b) ^ (a & c) ^ (b & c)
    )
    return d + t1, t1 + t2


@njit(cache=True, nogil=True)
def _compress(state, w):
    """One SHA-512 compression into state (uint64[8]) of the block whose 16 big-endian words
    are already in w[0:16]; w (uint64[80]) receives the rest of the message schedule.

    The 80 rounds run as 10 iterations of 8 renamed rounds (measured ~15% faster here than a
    loop that shifts a..h every round).
    """
    for t in range(16, 80):
        x = w[t - 15]
        y = w[t - 2]
        s0 = _rotr(x, np.uint64(1)) ^ _rotr(x, np.uint64(8)) ^ (x >> np.uint64(7))
        s1 = _rotr(y, np.uint64(19)) ^ _rotr(y, np.uint64(61)) ^ (y >> np.uint64(6))
        w[t] = w[t - 16] + s0 + w[t - 7] + s1
    a = state[0]
    b = state[1]
    c = state[2]
    d = state[3]
    e = state[4]
    f = state[5]
    g = state[6]
    h = state[7]
    for t in range(0, 80, 8):
        d, h = _round(a, b, c, d, e, f, g, h, _K[t] + w[t])
        c, g = _round(h, a, b, c, d, e, f, g, _K[t + 1] + w[t + 1])
        b, f = _round(g, h, a, b, c, d, e, f, _K[t + 2] + w[t + 2])
        a, e = _round(f, g, h, a, b, c, d, e, _K[t + 3] + w[t + 3])
        h, d = _round(e, f, g, h, a, b, c, d, _K[t + 4] + w[t + 4])
        g, c = _round(d, e, f, g, h, a, b, c, _K[t + 5] + w[t + 5])
        f, b = _round(c, d, e, f, g, h, a, b, _K[t + 6] + w[t + 6])
        e, a = _round(b, c, d, e, f, g, h, a, _K[t + 7] + w[t + 7])
    state[0] += a
    state[1] += b
    state[2] += c
    state[3] += d
    state[4] += e
    state[5] += f
    state[6] += g
    state[7] += h


@njit(cache=True, nogil=True)
def _be64(src, i):
    """The big-endian uint64 in src[i:i + 8]."""
    return (
        (np.uint64(src[i]) << np.uint64(56))
        | (np.uint64(src[i + 1]) << np.uint64(48))
        | (np.uint64(src[i + 2]) << np.uint64(40))
        | (np.uint64(src[i + 3]) << np.uint64(32))
        | (np.uint64(src[i + 4]) << np.uint64(24))
        | (np.uint64(src[i + 5]) << np.uint64(16))
        | (np.uint64(src[i + 6]) << np.uint64(8))
        | np.uint64(src[i + 7])
    )


@njit(cache=True, nogil=True)
def _store_be64(dst, i, v):
    """dst[i:i + 8] = the uint64 v big-endian (np.uint8() of a uint64 keeps the low byte)."""
    dst[i] = np.uint8(v >> np.uint64(56))
    dst[i + 1] = np.uint8(v >> np.uint64(48))
    dst[i + 2] = np.uint8(v >> np.uint64(40))
    dst[i + 3] = np.uint8(v >> np.uint64(32))
    dst[i + 4] = np.uint8(v >> np.uint64(24))
    dst[i + 5] = np.uint8(v >> np.uint64(16))
    dst[i + 6] = np.uint8(v >> np.uint64(8))
    dst[i + 7] = np.uint8(v)


@njit(cache=True, nogil=True)
def _padded_byte(q, a, a0, la, b, b0, lb, c, c0, lc):
    """Byte q of the stream a || b || c || 0x80 || zeros (the slow path, used near edges)."""
    if q < la:
        return np.uint64(a[a0 + q])
    if q < la + lb:
        return np.uint64(b[b0 + q - la])
    if q < la + lb + lc:
        return np.uint64(c[c0 + q - la - lb])
    if q == la + lb + lc:
        return np.uint64(0x80)
    return np.uint64(0)


@njit(cache=True, nogil=True)
def _load_block(w, p, padded, a, a0, la, b, b0, lb, c, c0, lc):
    """w[0:16] = the 16 big-endian words of padded-stream bytes [p, p + 128).

    A word inside one segment is read directly; a word that straddles two segments or the end
    of the message is assembled byte by byte; the last word of the last block is the bit length.
    """
    total = la + lb + lc
    for t in range(16):
        q = p + 8 * t
        if q + 8 <= la:
            w[t] = _be64(a, a0 + q)
        elif q >= la and q + 8 <= la + lb:
            w[t] = _be64(b, b0 + q - la)
        elif q >= la + lb and q + 8 <= total:
            w[t] = _be64(c, c0 + q - la - lb)
        elif q == padded - 8:
            w[t] = np.uint64(total) << np.uint64(3)  # bit length (< 2^64 bits: high word is 0)
        elif q > total:
            w[t] = np.uint64(0)
        else:
            v = np.uint64(0)
            for j in range(8):
                v = (v << np.uint64(8)) | _padded_byte(q + j, a, a0, la, b, b0, lb, c, c0, lc)
            w[t] = v


@njit(cache=True, nogil=True)
def _sha512_3(a, a0, a1, b, b0, b1, c, c0, c1, out, state, w):
    """SHA-512 of the stream a[a0:a1] || b[b0:b1] || c[c0:c1] into out[0:64].

    state (uint64[8]) and w (uint64[80]) are caller-owned scratch. No byte is copied: each
    block's words are read from where they lie (steps 2 and 3 of the module docstring, with
    the padding 0x80 || zeros || length generated on the fly).
    """
    la = a1 - a0
    lb = b1 - b0
    lc = c1 - c0
    total = la + lb + lc
    padded = (total + 17 + 127) // 128 * 128
    for i in range(8):
        state[i] = _H0[i]
    for p in range(0, padded, 128):
        _load_block(w, p, padded, a, a0, la, b, b0, lb, c, c0, lc)
        _compress(state, w)
    # Step 4: big-endian digest.
    for i in range(8):
        _store_be64(out, 8 * i, state[i])


@njit(cache=True, nogil=True)
def sha512_row(data, start, end, out):
    """SHA-512 of data[start:end] (uint8) into out[0:64].

    Example: sha512_row(np.frombuffer(b"abc", np.uint8), 0, 3, out) gives
    out.tobytes() == hashlib.sha512(b"abc").digest().
    """
    state = np.empty(8, np.uint64)
    w = np.empty(80, np.uint64)
    _sha512_3(data, start, end, data, 0, 0, data, 0, 0, out, state, w)


@njit(cache=True, nogil=True)
def sha512_ram_row(sig, pk, msg_data, msg_start, msg_end, out):
    """SHA-512(R || A || M) into out[0:64], with R = sig[0:32], A = pk[0:32], M = msg_data[msg_start:msg_end].

    The bytes are hashed as given (never re-encoded), as ZIP-215 requires for k. No
    concatenated buffer is built. Example: with sig, pk, msg as uint8 arrays,
    sha512_ram_row(sig, pk, msg, 0, len(msg), out) equals
    hashlib.sha512(sig[:32].tobytes() + pk.tobytes() + msg.tobytes()).digest().
    """
    state = np.empty(8, np.uint64)
    w = np.empty(80, np.uint64)
    _sha512_3(sig, 0, 32, pk, 0, 32, msg_data, msg_start, msg_end, out, state, w)


@njit(cache=True, nogil=True)
def sha512_columns(msg_data, msg_offsets, out):
    """Row i of out (uint8[n, 64]) = SHA-512(msg_data[msg_offsets[i]:msg_offsets[i + 1]]).

    msg_data is the concatenation of the messages (uint8), msg_offsets is int64[n + 1].
    Example: data = b"".join(msgs); offsets = [0, cumsum(len(m))...];
    sha512_columns(data, offsets, out); out[i].tobytes() == hashlib.sha512(msgs[i]).digest().
    """
    n = msg_offsets.shape[0] - 1
    state = np.empty(8, np.uint64)
    w = np.empty(80, np.uint64)
    for i in range(n):
        _sha512_3(
            msg_data, msg_offsets[i], msg_offsets[i + 1],
            msg_data, 0, 0,
            msg_data, 0, 0,
            out[i], state, w,
        )


@njit(cache=True, nogil=True)
def sha512_ram_columns(sigs, pks, msg_data, msg_offsets, out):
    """Row i of out (uint8[n, 64]) = SHA-512(sigs[i, 0:32] || pks[i] || M_i), the Ed25519 k hash.

    sigs is uint8[n, 64], pks uint8[n, 32], M_i = msg_data[msg_offsets[i]:msg_offsets[i + 1]].
    Example: out[i].tobytes() == hashlib.sha512(sig[:32] + pk + msg).digest() for every row.
    """
    n = msg_offsets.shape[0] - 1
    state = np.empty(8, np.uint64)
    w = np.empty(80, np.uint64)
    for i in range(n):
        _sha512_3(
            sigs[i], 0, 32,
            pks[i], 0, 32,
            msg_data, msg_offsets[i], msg_offsets[i + 1],
            out[i], state, w,
        )
