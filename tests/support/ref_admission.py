"""The slow obvious twin of key admission: Edwards25519 with Python ints (public data only).

A key is admitted when it is 32 bytes, canonical (y < p), decodes, is not of small order and is
torsion-free ([L]A = identity); ``ref_reason`` names the first rule a key breaks, as
engine.verification.keys.check_admissible must.
"""
from __future__ import annotations

from engine.model.errors import KeyReason

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def ref_decode(enc: bytes) -> tuple[int, int] | None:
    """RFC 8032 decoding, rejecting y >= p (the admission policy's canonical form); ``x = 0``
    with the sign bit set decodes to ``x = 0`` as in ZIP-215: the same point, so the identity
    written ``0100..0080`` is of small order, like the identity."""
    y = int.from_bytes(enc, "little") & ((1 << 255) - 1)
    sign = enc[31] >> 7
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * v**3 * pow(u * v**7, (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x == 0:
        return 0, y
    if x & 1 != sign:
        x = P - x
    return x, y


def ref_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


def ref_mul(k: int, a: tuple[int, int]) -> tuple[int, int]:
    acc = (0, 1)
    while k:
        if k & 1:
            acc = ref_add(acc, a)
        a, k = ref_add(a, a), k >> 1
    return acc


def ref_reason(enc: bytes) -> KeyReason | None:
    if len(enc) != 32:
        return KeyReason.WRONG_LENGTH
    if int.from_bytes(enc, "little") & ((1 << 255) - 1) >= P:
        return KeyReason.NON_CANONICAL
    point = ref_decode(enc)
    if point is None:
        return KeyReason.NOT_ON_CURVE
    if ref_mul(8, point) == (0, 1):
        return KeyReason.SMALL_ORDER
    return None if ref_mul(L, point) == (0, 1) else KeyReason.NOT_TORSION_FREE


def encode_point(p: tuple[int, int]) -> bytes:
    x, y = p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


# The two points with x = 0 (identity, order 2) written with the sign bit set: small order too.
SIGN_BIT_SMALL_ORDER_HEX = [
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
]
# Canonical encodings of the 8 points of order dividing 8.
SMALL_ORDER_HEX = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
]
