"""Slow, obvious ZIP-215 Ed25519 reference verifier: Python ints and hashlib only.

It is the twin that the Numba verifier (kernels/) is checked against, and the generator of
adversarial cases (tests/support/ed25519_cases.py). Nothing here is fast or constant-time, and the raw
scalar signing helper exists only to build test cases; never use it for real keys.

ZIP-215 (https://zips.z.cash/zip-0215), as docs/design.md ("Validity rule") states it:
  1. A and R are decoded from 32 bytes: y = the low 255 bits reduced mod p (non-canonical
     y >= p allowed), x recovered from x^2 = (y^2 - 1) / (d y^2 + 1) with the sign bit; if
     x = 0 and the sign bit is set ("negative zero") x = 0 is accepted; no square root ->
     invalid.
  2. S (the last 32 bytes of the signature, little-endian) must be < L.
  3. k = SHA-512(R_bytes || A_bytes || M) mod L, over the bytes as given.
  4. Valid iff [8]([S]B - R - [k]A) is the identity (cofactored equation).
Batch (reference of the equation the engine implements): with random 128-bit z_i, valid iff
  [8](-(sum z_i S_i) B + sum z_i R_i + sum (z_i k_i) A_i) is the identity; if it is not, each
  signature is checked on its own.

Points are extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, xy = T/Z (Hisil et al.
2008, "Twisted Edwards curves revisited", a = -1; the addition formula is complete on
edwards25519, so the same formula doubles).
"""

from __future__ import annotations

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
D2 = (2 * D) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]
IDENTITY: Point = (0, 1, 1, 0)


# ---- field helpers -------------------------------------------------------------------------

def inv(x: int) -> int:
    return pow(x, P - 2, P)


def recover_x(y: int, sign: int) -> int | None:
    """x with x^2 = (y^2 - 1) / (d y^2 + 1) and x mod 2 == sign; ZIP-215: x = 0 ignores sign.

    y must already be reduced mod p. Returns None when there is no square root.
    """
    x2 = (y * y - 1) * inv(D * y * y + 1) % P
    if x2 == 0:
        return 0  # RFC 8032 rejects sign = 1 here; ZIP-215 accepts "negative zero".
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if x & 1 != sign:
        x = P - x
    return x


# ---- points --------------------------------------------------------------------------------

def from_affine(x: int, y: int) -> Point:
    return (x % P, y % P, 1, x * y % P)


def to_affine(pt: Point) -> tuple[int, int]:
    zi = inv(pt[2])
    return pt[0] * zi % P, pt[1] * zi % P


def point_add(p1: Point, p2: Point) -> Point:
    """RFC 8032 section 5.1.4 addition (complete; also used to double)."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * D2 * t2 % P
    d = z1 * 2 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_double(pt: Point) -> Point:
    return point_add(pt, pt)


def point_neg(pt: Point) -> Point:
    x, y, z, t = pt
    return ((-x) % P, y, z, (-t) % P)


def point_sub(p1: Point, p2: Point) -> Point:
    return point_add(p1, point_neg(p2))


def point_eq(p1: Point, p2: Point) -> bool:
    return (p1[0] * p2[2] - p2[0] * p1[2]) % P == 0 and (p1[1] * p2[2] - p2[1] * p1[2]) % P == 0


def is_identity(pt: Point) -> bool:
    return point_eq(pt, IDENTITY)


def scalar_mult(s: int, pt: Point) -> Point:
    """[s]pt by double-and-add from the top bit (s >= 0, any size)."""
    q = IDENTITY
    for bit in bin(s)[2:] if s > 0 else "":
        q = point_double(q)
        if bit == "1":
            q = point_add(q, pt)
    return q


def mul_by_cofactor(pt: Point) -> Point:
    return point_double(point_double(point_double(pt)))


def compress(pt: Point) -> bytes:
    """Canonical 32-byte encoding: y < p little-endian, sign of x in bit 255."""
    x, y = to_affine(pt)
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decompress_zip215(b: bytes) -> Point | None:
    """ZIP-215 decoding: non-canonical y allowed, negative zero accepted, None if not on the curve."""
    if len(b) != 32:
        return None
    v = int.from_bytes(b, "little")
    sign = v >> 255
    y = (v & ((1 << 255) - 1)) % P
    x = recover_x(y, sign)
    if x is None:
        return None
    return from_affine(x, y)


def is_canonical_encoding(b: bytes) -> bool:
    """True when b is the encoding compress() produces for the point it decodes to."""
    pt = decompress_zip215(b)
    return pt is not None and compress(pt) == b


_BY = 4 * inv(5) % P
B: Point = from_affine(recover_x(_BY, 0), _BY)
_B_DOUBLINGS = [B]
for _ in range(255):
    _B_DOUBLINGS.append(point_double(_B_DOUBLINGS[-1]))


def base_mult(s: int) -> Point:
    """[s]B for 0 <= s < 2^256, adding precomputed [2^i]B (fixed-base, about twice as fast)."""
    q = IDENTITY
    i = 0
    while s:
        if s & 1:
            q = point_add(q, _B_DOUBLINGS[i])
        s >>= 1
        i += 1
    return q


# ---- verification --------------------------------------------------------------------------

def challenge(r_bytes: bytes, a_bytes: bytes, msg: bytes) -> int:
    """k = SHA-512(R || A || M) mod L over the bytes as given."""
    return int.from_bytes(hashlib.sha512(r_bytes + a_bytes + msg).digest(), "little") % L


def parse_zip215(msg: bytes, sig: bytes, pk: bytes) -> tuple[int, Point, Point, int] | None:
    """(S, R, A, k) when the lengths, the points and S < L are acceptable, else None."""
    if len(sig) != 64 or len(pk) != 32:
        return None
    a_pt = decompress_zip215(pk)
    r_pt = decompress_zip215(sig[:32])
    if a_pt is None or r_pt is None:
        return None
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return None
    return s, r_pt, a_pt, challenge(sig[:32], pk, msg)


def verify_zip215(msg: bytes, sig: bytes, pk: bytes) -> bool:
    """ZIP-215 single verification: [8]([S]B - R - [k]A) == identity."""
    parsed = parse_zip215(bytes(msg), bytes(sig), bytes(pk))
    if parsed is None:
        return False
    s, r_pt, a_pt, k = parsed
    check = point_sub(point_sub(base_mult(s), r_pt), scalar_mult(k, a_pt))
    return is_identity(mul_by_cofactor(check))


def batch_equation_zip215(parsed: list[tuple[int, Point, Point, int]], zs: list[int]) -> bool:
    """[8](-(sum z_i S_i) B + sum z_i R_i + sum (z_i k_i) A_i) == identity."""
    s_sum = 0
    acc = IDENTITY
    for (s, r_pt, a_pt, k), z in zip(parsed, zs):
        s_sum = (s_sum + z * s) % L
        acc = point_add(acc, scalar_mult(z, r_pt))
        acc = point_add(acc, scalar_mult(z * k % L, a_pt))
    acc = point_sub(acc, base_mult(s_sum))
    return is_identity(mul_by_cofactor(acc))


def verify_batch_zip215(items, rng) -> list[bool]:
    """Batch verification of items = [(msg, sig, pk), ...] with z_i = rng.getrandbits(128).

    Rows that fail to parse are False and stay out of the equation; if the equation over the
    rest fails, each of them is verified on its own. rng: random.Random or random.SystemRandom.
    """
    items = [(bytes(m), bytes(s), bytes(k)) for m, s, k in items]
    parsed = [parse_zip215(m, s, k) for m, s, k in items]
    idx = [i for i, p in enumerate(parsed) if p is not None]
    result = [False] * len(items)
    zs = [rng.getrandbits(128) for _ in idx]
    if batch_equation_zip215([parsed[i] for i in idx], zs):
        for i in idx:
            result[i] = True
        return result
    for i in idx:
        result[i] = verify_zip215(*items[i])
    return result


# ---- adversarial construction helpers ------------------------------------------------------

def _find_order8_point() -> Point:
    y = 2
    while True:
        pt = decompress_zip215(y.to_bytes(32, "little"))
        if pt is not None:
            t = scalar_mult(L, pt)  # [L]pt lies in the 8-torsion: [8]t = identity
            if not is_identity(point_double(point_double(t))):
                return t  # [4]t != identity: order exactly 8
        y += 1


_T8 = _find_order8_point()
SMALL_ORDER_POINTS: list[Point] = [scalar_mult(i, _T8) for i in range(8)]
"""The 8 points of order dividing 8: SMALL_ORDER_POINTS[i] = [i]T8 for an order-8 point T8."""


def small_order_encodings() -> list[bytes]:
    """Every 32-byte string that ZIP-215 decodes to a small-order point.

    Canonical encodings of the 8 points, their non-canonical y + p forms (only y = 0 and y = 1
    have y + p < 2^255), and the sign-bit-set forms of the points with x = 0 (y = 1 and
    y = p - 1, "negative zero"), including the non-canonical y = 1 + p with the sign bit.
    """
    out = []
    for y in sorted({to_affine(pt)[1] for pt in SMALL_ORDER_POINTS}):
        for yy in (y, y + P):
            if yy >= 2**255:
                continue
            for sign in (0, 1):
                b = (yy | (sign << 255)).to_bytes(32, "little")
                pt = decompress_zip215(b)
                if pt is not None and any(point_eq(pt, t) for t in SMALL_ORDER_POINTS):
                    out.append(b)
    return sorted(set(out))


def noncanonical_encodings() -> list[bytes]:
    """Every decodable encoding with y >= p (y + p for y < 19), either sign bit."""
    out = []
    for y in range(19):
        for sign in (0, 1):
            b = ((y + P) | (sign << 255)).to_bytes(32, "little")
            if decompress_zip215(b) is not None:
                out.append(b)
    return out


def negative_zero_encodings() -> list[bytes]:
    """Encodings of x = 0 points with the sign bit set (y = 1, y = p - 1, y = 1 + p)."""
    return [
        (1 | (1 << 255)).to_bytes(32, "little"),
        ((P - 1) | (1 << 255)).to_bytes(32, "little"),
        ((1 + P) | (1 << 255)).to_bytes(32, "little"),
    ]


def identity_encodings() -> list[bytes]:
    """Every encoding of the identity: y = 1 and y = 1 + p, sign bit clear or set."""
    return [b for b in small_order_encodings() if is_identity(decompress_zip215(b))]


def encode_with_torsion(scalar: int, torsion_index: int) -> bytes:
    """Canonical encoding of [scalar]B + SMALL_ORDER_POINTS[torsion_index]."""
    return compress(point_add(base_mult(scalar % L), SMALL_ORDER_POINTS[torsion_index]))


def sign_raw(msg: bytes, a: int, a_bytes: bytes, r: int, r_bytes: bytes) -> bytes:
    """Signature (R_bytes || S) with S = r + k a mod L and k = H(R_bytes || A_bytes || M).

    a_bytes may encode any point [a]B + T and r_bytes any point [r]B + T' (T, T' small order,
    any encoding): the result then passes the cofactored ZIP-215 check, since
    [S]B - R - [k]A = -T' - [k]T is killed by [8]. Test-case construction only.
    """
    k = challenge(r_bytes, a_bytes, msg)
    s = (r + k * a) % L
    return r_bytes + s.to_bytes(32, "little")


def secret_scalar_from_seed(seed: bytes) -> tuple[int, bytes]:
    """RFC 8032 key expansion: (clamped scalar a, prefix) from a 32-byte seed."""
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def public_key_from_seed(seed: bytes) -> bytes:
    return compress(base_mult(secret_scalar_from_seed(seed)[0]))


def sign_rfc8032(seed: bytes, msg: bytes) -> bytes:
    """Deterministic RFC 8032 Ed25519 signature (to check the RFC vectors end to end)."""
    a, prefix = secret_scalar_from_seed(seed)
    a_bytes = compress(base_mult(a))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % L
    r_bytes = compress(base_mult(r))
    return sign_raw(msg, a, a_bytes, r, r_bytes)
