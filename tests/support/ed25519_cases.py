"""Ed25519 test cases with their ZIP-215 verdicts: the public suites and adversarial constructions.

vector_cases(): Wycheproof, CCTV and speccheck from engine/verification/vectors (override the folder with
BIZRA_VECTORS_DIR) with the verdicts of expected_zip215.json.
adversarial_cases(n, seed): structured families (every small-order encoding as A and R, torsion
on A and R, non-canonical and negative-zero encodings, identity points, S = 0, S >= L, wrong
lengths) plus n random cases drawn from those families and from honest signatures, some of them
corrupted. Every verdict comes from tests/ref_ed25519.verify_zip215. Deterministic for a seed.
"""

from __future__ import annotations

import random

from tests.support import ref_ed25519 as ref

from engine.verification.conformance import load_vectors, vectors_dir

Case = tuple[bytes, bytes, bytes, bool]

VECTORS_DIR = vectors_dir()


def vector_cases() -> list[tuple[str, object, bytes, bytes, bytes, bool]]:
    """[(suite, id, msg, sig, pk, expected_zip215)] for suites wycheproof (id = tcId), cctv
    (id = number) and speccheck (id = index in cases.json): engine.verification.conformance, as plain tuples."""
    return [tuple(v) for v in load_vectors()]


# RFC 8032 section 7.1: (name, secret key (seed), public key, message, signature), hex.
RFC8032_VECTORS = [
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST 1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e488acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380db2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    (
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]


# ---- adversarial families ------------------------------------------------------------------

def _scalar(rng: random.Random) -> int:
    return rng.randrange(1, ref.L)


def _msg(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([0, 1, 32, 64, 110, 111, 112, 127, 128, 200]))


def _s_bytes(s: int) -> bytes:
    return s.to_bytes(32, "little")


def _with_s(sig: bytes, s: int) -> bytes:
    return sig[:32] + _s_bytes(s)


def _honest(rng: random.Random, msg: bytes) -> tuple[bytes, bytes]:
    """(sig, pk) of an RFC 8032 signature under a random seed."""
    seed = rng.randbytes(32)
    return ref.sign_rfc8032(seed, msg), ref.public_key_from_seed(seed)


def _torsion_signed(rng: random.Random, msg: bytes, ta: int, tr: int) -> tuple[bytes, bytes]:
    """Valid-under-ZIP-215 signature with A = [a]B + T_ta and R = [r]B + T_tr."""
    a, r = _scalar(rng), _scalar(rng)
    a_bytes = ref.encode_with_torsion(a, ta)
    r_bytes = ref.encode_with_torsion(r, tr)
    return ref.sign_raw(msg, a, a_bytes, r, r_bytes), a_bytes


def _flip_bit(b: bytes, bit: int) -> bytes:
    arr = bytearray(b)
    arr[bit // 8] ^= 1 << (bit % 8)
    return bytes(arr)


def _corrupt(rng: random.Random, msg: bytes, sig: bytes, pk: bytes) -> tuple[bytes, bytes, bytes]:
    """One random corruption: a bit flip in R, S, the message or the key, or S + L."""
    kind = rng.choice(["R", "S", "msg", "pk", "S+L"])
    if kind == "R":
        sig = _flip_bit(sig, rng.randrange(256))
    elif kind == "S":
        sig = _flip_bit(sig, 256 + rng.randrange(256))
    elif kind == "msg":
        msg = _flip_bit(msg, rng.randrange(8 * len(msg))) if msg else b"\x00"
    elif kind == "pk":
        pk = _flip_bit(pk, rng.randrange(256))
    else:
        sig = _with_s(sig, int.from_bytes(sig[32:], "little") + ref.L)
    return msg, sig, pk


def _structured(rng: random.Random) -> list[tuple[bytes, bytes, bytes]]:
    rows: list[tuple[bytes, bytes, bytes]] = []
    small = ref.small_order_encodings()  # 14 encodings of the 8 small-order points
    noncanon = ref.noncanonical_encodings()
    zero32 = bytes(32)

    # Small-order A and R, S = 0: [8](-R - [k]A) = identity, so valid for any message.
    for a_bytes in small:
        for r_bytes in small:
            rows.append((b"small-order A and R", r_bytes + zero32, a_bytes))
    # ... and S = L, S = L - 1 + 1 (= L), S = 2^256 - 1: S is not canonical.
    for a_bytes in small[::3]:
        for r_bytes in small[::4]:
            rows.append((b"S = L", r_bytes + _s_bytes(ref.L), a_bytes))
            rows.append((b"S = 2^256-1", r_bytes + b"\xff" * 32, a_bytes))
    # Small-order A (a = 0), R = [r]B (+ torsion): S = r is valid for every message.
    for a_bytes in small:
        r = _scalar(rng)
        for tr in (0, 3):
            r_bytes = ref.encode_with_torsion(r, tr)
            msg = _msg(rng)
            rows.append((msg, ref.sign_raw(msg, 0, a_bytes, r, r_bytes), a_bytes))
    # Small-order R (r = 0), A = [a]B (+ torsion): S = k a.
    for r_bytes in small:
        a = _scalar(rng)
        for ta in (0, 5):
            a_bytes = ref.encode_with_torsion(a, ta)
            msg = _msg(rng)
            rows.append((msg, ref.sign_raw(msg, a, a_bytes, 0, r_bytes), a_bytes))
    # Torsion on A and on R, every pair of torsion points; also with S + L and a wrong message.
    for ta in range(8):
        for tr in range(8):
            msg = _msg(rng)
            sig, pk = _torsion_signed(rng, msg, ta, tr)
            rows.append((msg, sig, pk))
            if (ta + tr) % 4 == 0:
                rows.append((msg, _with_s(sig, int.from_bytes(sig[32:], "little") + ref.L), pk))
                rows.append((msg + b"x", sig, pk))
    # Non-canonical (y >= p) encodings as A or R next to an honest other half (mostly invalid:
    # those with y = 0 or 1 are small order, the rest are points whose logarithm we do not know).
    for enc in noncanon:
        msg = _msg(rng)
        sig, pk = _honest(rng, msg)
        rows.append((msg, sig, enc))
        rows.append((msg, enc + sig[32:], pk))
        r = _scalar(rng)
        rows.append((msg, ref.sign_raw(msg, 0, enc, r, ref.compress(ref.base_mult(r))), enc))
    # Negative zero and identity encodings as A (a = 0) or R (r = 0) in otherwise valid signatures.
    for enc in ref.negative_zero_encodings() + ref.identity_encodings():
        msg = _msg(rng)
        a, r = _scalar(rng), _scalar(rng)
        a_bytes = ref.compress(ref.base_mult(a))
        r_bytes = ref.compress(ref.base_mult(r))
        rows.append((msg, ref.sign_raw(msg, 0, enc, r, r_bytes), enc))
        rows.append((msg, ref.sign_raw(msg, a, a_bytes, 0, enc), a_bytes))
        rows.append((msg, enc + zero32, enc))
    # Undecodable encodings (no square root) as A or R.
    bad = [b for b in (y.to_bytes(32, "little") for y in range(2, 40)) if ref.decompress_zip215(b) is None]
    msg = b"undecodable"
    sig, pk = _honest(rng, msg)
    for enc in bad[:6]:
        rows.append((msg, sig, enc))
        rows.append((msg, enc + sig[32:], pk))
    # S = 0 and S = L - 1 on honest signatures, high bits of S set.
    for s in (0, 1, ref.L - 1, ref.L, ref.L + 1, 2**253, 2**255):
        msg = _msg(rng)
        sig, pk = _honest(rng, msg)
        rows.append((msg, _with_s(sig, s), pk))
    # Wrong lengths are invalid rows, never errors.
    msg = b"lengths"
    sig, pk = _honest(rng, msg)
    for s_len, p_len in ((0, 32), (63, 32), (65, 32), (64, 0), (64, 31), (64, 33), (128, 64)):
        rows.append((msg, (sig * 2)[:s_len], (pk * 2)[:p_len]))
    # Honest signatures, and the same signature on another message.
    for _ in range(8):
        msg = _msg(rng)
        sig, pk = _honest(rng, msg)
        rows.append((msg, sig, pk))
        rows.append((msg + b"!", sig, pk))
    return rows


def _random_case(rng: random.Random) -> tuple[bytes, bytes, bytes]:
    msg = _msg(rng)
    family = rng.choice(["honest", "honest", "torsion", "small_A", "small_R", "small_both", "noncanonical"])
    if family == "honest":
        sig, pk = _honest(rng, msg)
    elif family == "torsion":
        sig, pk = _torsion_signed(rng, msg, rng.randrange(8), rng.randrange(8))
    elif family == "small_A":
        pk = rng.choice(ref.small_order_encodings())
        r = _scalar(rng)
        r_bytes = ref.encode_with_torsion(r, rng.randrange(8))
        sig = ref.sign_raw(msg, 0, pk, r, r_bytes)
    elif family == "small_R":
        a = _scalar(rng)
        pk = ref.encode_with_torsion(a, rng.randrange(8))
        sig = ref.sign_raw(msg, a, pk, 0, rng.choice(ref.small_order_encodings()))
    elif family == "small_both":
        pk = rng.choice(ref.small_order_encodings())
        sig = rng.choice(ref.small_order_encodings()) + bytes(32)
    else:
        enc = rng.choice(ref.noncanonical_encodings())
        r = _scalar(rng)
        sig = ref.sign_raw(msg, 0, enc, r, ref.compress(ref.base_mult(r)))
        pk = enc
    if rng.random() < 0.35:
        msg, sig, pk = _corrupt(rng, msg, sig, pk)
    return msg, sig, pk


def adversarial_cases(n_random: int, seed: int) -> list[Case]:
    """Structured adversarial cases plus n_random random ones, each with its ZIP-215 verdict.

    Example: cases = adversarial_cases(1000, seed=215); for msg, sig, pk, ok in cases:
    assert engine.verify_one(msg, sig, pk) == ok.
    """
    rng = random.Random(seed)
    rows = _structured(rng)
    rows += [_random_case(rng) for _ in range(n_random)]
    return [(m, s, k, ref.verify_zip215(m, s, k)) for m, s, k in rows]


# ---- honest and randomly corrupted signatures (libsodium is the oracle) --------------------

def libsodium_verify(msg: bytes, sig: bytes, pk: bytes) -> bool:
    """libsodium's verdict (crypto_sign_verify_detached through PyNaCl); wrong lengths are False."""
    from nacl.exceptions import BadSignatureError, CryptoError
    from nacl.signing import VerifyKey

    if len(sig) != 64 or len(pk) != 32:
        return False
    try:
        VerifyKey(pk).verify(msg, sig)
        return True
    except (BadSignatureError, CryptoError, ValueError):
        return False


def honest_and_corrupted(n: int, seed: int, corrupt_fraction: float = 0.5) -> list[Case]:
    """n signatures by libsodium under a pool of n // 8 + 1 keys (keys repeat, as validators do);
    a corrupt_fraction of them corrupted (bit flip in R, S, message or key, or S + L).

    The verdict is libsodium's: on such inputs ZIP-215 and libsodium agree, so any
    disagreement is a bug. Deterministic for a seed.
    """
    from nacl.signing import SigningKey

    rng = random.Random(seed)
    keys = [SigningKey(rng.randbytes(32)) for _ in range(n // 8 + 1)]
    pks = [bytes(k.verify_key) for k in keys]
    out: list[Case] = []
    for _ in range(n):
        j = rng.randrange(len(keys))
        msg = rng.randbytes(rng.choice([0, 1, 32, 110, 120, 120, 120, 200, 500]))
        sig = keys[j].sign(msg).signature
        pk = pks[j]
        if rng.random() < corrupt_fraction:
            msg, sig, pk = _corrupt(rng, msg, sig, pk)
        out.append((msg, sig, pk, libsodium_verify(msg, sig, pk)))
    return out
