"""The slow ZIP-215 reference (tests/support/ref_ed25519.py) against the facts it must reproduce:
the verdicts of engine/verification/vectors/expected_zip215.json (single and batch), RFC 8032 section 7.1
test vectors, libsodium (PyNaCl) on honest and randomly corrupted signatures, and the algebra of
the adversarial constructions.
"""

import random

import pytest
from nacl.signing import SigningKey

from tests.support import ref_ed25519 as ref
from tests.support.ed25519_cases import (
    RFC8032_VECTORS,
    adversarial_cases,
    honest_and_corrupted,
    libsodium_verify,
    vector_cases,
)


# ---- curve facts ---------------------------------------------------------------------------

def test_base_point_and_order():
    assert ref.compress(ref.B).hex() == "58" + "66" * 31
    assert ref.is_identity(ref.scalar_mult(ref.L, ref.B))
    assert not ref.is_identity(ref.scalar_mult(ref.L - 1, ref.B))
    assert ref.point_eq(ref.base_mult(12345), ref.scalar_mult(12345, ref.B))
    assert ref.D == 37095705934669439343138083508754565189542113879843219016388785533085940283555


def test_small_order_points():
    pts = ref.SMALL_ORDER_POINTS
    encs = {ref.compress(t).hex() for t in pts}
    assert len(encs) == 8
    assert "0100000000000000000000000000000000000000000000000000000000000000" in encs
    assert "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f" in encs
    assert "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a" in encs
    assert "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05" in encs
    for t in pts:
        assert ref.is_identity(ref.mul_by_cofactor(t))
    # 8 canonical + 2 negative-zero (y = 1, y = p - 1) + 4 with y + p (y = 0, 1; either sign).
    assert len(ref.small_order_encodings()) == 14
    assert len(ref.identity_encodings()) == 4


def test_decompress_zip215_edges():
    # Negative zero: y = 1 with the sign bit decodes to the identity (RFC 8032 would reject it).
    assert ref.is_identity(ref.decompress_zip215(bytes.fromhex("01" + "00" * 30 + "80")))
    # y = 1 + p (non-canonical) also decodes to the identity.
    assert ref.is_identity(ref.decompress_zip215((1 + ref.P).to_bytes(32, "little")))
    # Non-canonical y + p decodes to the same point as y, and re-encodes canonically.
    for enc in ref.noncanonical_encodings():
        pt = ref.decompress_zip215(enc)
        v = int.from_bytes(enc, "little")
        canon = ((v & (2**255 - 1)) - ref.P) | (v >> 255 << 255)
        assert ref.point_eq(pt, ref.decompress_zip215(canon.to_bytes(32, "little")))
        assert not ref.is_canonical_encoding(enc)
    # Wrong length and a y with no square root.
    assert ref.decompress_zip215(b"\x01" * 31) is None
    assert ref.decompress_zip215((2).to_bytes(32, "little")) is None
    rng = random.Random(1)
    for _ in range(50):
        pt = ref.base_mult(rng.randrange(ref.L))
        assert ref.point_eq(ref.decompress_zip215(ref.compress(pt)), pt)


def test_raw_signing_with_torsion_is_zip215_valid():
    rng = random.Random(2)
    for ta in range(8):
        for tr in range(8):
            a, r = rng.randrange(1, ref.L), rng.randrange(1, ref.L)
            msg = rng.randbytes(40)
            a_bytes = ref.encode_with_torsion(a, ta)
            sig = ref.sign_raw(msg, a, a_bytes, r, ref.encode_with_torsion(r, tr))
            assert ref.verify_zip215(msg, sig, a_bytes)
            # Without the cofactor the equation fails whenever torsion survives.
            parsed = ref.parse_zip215(msg, sig, a_bytes)
            s, r_pt, a_pt, k = parsed
            plain = ref.point_sub(ref.point_sub(ref.base_mult(s), r_pt), ref.scalar_mult(k, a_pt))
            assert ref.is_identity(plain) == ref.is_identity(
                ref.point_add(ref.SMALL_ORDER_POINTS[tr], ref.scalar_mult(k, ref.SMALL_ORDER_POINTS[ta]))
            )


# ---- public vectors ------------------------------------------------------------------------

VECTORS = vector_cases()


def test_vector_counts():
    suites = {}
    for suite, *_ in VECTORS:
        suites[suite] = suites.get(suite, 0) + 1
    assert suites == {"wycheproof": 151, "cctv": 914, "speccheck": 12}


@pytest.mark.parametrize("suite", ["wycheproof", "cctv", "speccheck"])
def test_reference_reproduces_every_expected_verdict(suite):
    wrong = [
        (cid, expected)
        for s, cid, msg, sig, pk, expected in VECTORS
        if s == suite and ref.verify_zip215(msg, sig, pk) != expected
    ]
    assert wrong == []


def test_expected_verdicts_match_readme_facts():
    import json

    from tests.support.ed25519_cases import VECTORS_DIR

    wy = json.loads((VECTORS_DIR / "wycheproof_ed25519_test.json").read_text())
    results = {t["tcId"]: t["result"] for g in wy["testGroups"] for t in g["tests"]}
    for suite, cid, _, _, _, expected in VECTORS:
        if suite == "wycheproof":
            assert expected == (results[cid] == "valid" or cid == 151), cid
    assert results[151] == "invalid"
    cctv = {v["number"]: v["flags"] or [] for v in json.loads((VECTORS_DIR / "cctv_ed25519vectors.json").read_text())}
    cctv_cases = [(cid, e) for s, cid, _, _, _, e in VECTORS if s == "cctv"]
    assert sum(e for _, e in cctv_cases) == 826
    assert all("reencoded_k" in cctv[cid] for cid, e in cctv_cases if not e)
    assert sum(1 for cid, e in cctv_cases if e and "reencoded_k" in cctv[cid]) == 58
    spec = "".join("V" if e else "X" for s, _, _, _, _, e in VECTORS if s == "speccheck")
    assert spec == "VVVVVVXXXVVV"


def test_libsodium_is_stricter_as_the_readme_says():
    """libsodium is not the oracle for the public suites: check the README's numbers for it."""
    got = {"wycheproof": [], "cctv": [], "speccheck": []}
    differ_wycheproof = []
    for suite, cid, msg, sig, pk, expected in VECTORS:
        lib = libsodium_verify(msg, sig, pk)
        got[suite].append((lib, expected))
        if suite == "wycheproof" and lib != expected:
            differ_wycheproof.append(cid)
    # libsodium follows Wycheproof's own verdicts, which differ from ZIP-215 only at tcId 151.
    assert differ_wycheproof == [151]
    assert sum(lib for lib, _ in got["cctv"]) == 43
    assert "".join("V" if lib else "X" for lib, _ in got["speccheck"]) == "XXXVXXXXXXXX"
    # Whatever libsodium accepts, ZIP-215 accepts too.
    assert all(exp for suite in got for lib, exp in got[suite] if lib)


@pytest.mark.parametrize("suite", ["wycheproof", "cctv", "speccheck"])
def test_reference_batch_reproduces_every_expected_verdict(suite):
    rows = [(m, s, k) for st, _, m, s, k, _ in VECTORS if st == suite]
    expected = [e for st, *_, e in VECTORS if st == suite]
    rng = random.Random(3)
    # The whole suite as one batch (its equation fails, so rows fall back to single checks).
    assert ref.verify_batch_zip215(rows, rng) == expected
    # The accepted rows alone satisfy the batch equation itself.
    good = [ref.parse_zip215(*r) for r, e in zip(rows, expected) if e]
    assert all(p is not None for p in good)
    assert ref.batch_equation_zip215(good, [rng.getrandbits(128) for _ in good])
    # Random sub-batches, shuffled.
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    pos = 0
    while pos < min(len(idx), 120):
        size = rng.randint(1, 17)
        part = idx[pos : pos + size]
        assert ref.verify_batch_zip215([rows[i] for i in part], rng) == [expected[i] for i in part]
        pos += size


def test_batch_equation_rejects_one_bad_row():
    rng = random.Random(4)
    rows = []
    for _ in range(6):
        seed = rng.randbytes(32)
        msg = rng.randbytes(20)
        rows.append((msg, ref.sign_rfc8032(seed, msg), ref.public_key_from_seed(seed)))
    parsed = [ref.parse_zip215(*r) for r in rows]
    assert ref.batch_equation_zip215(parsed, [rng.getrandbits(128) for _ in parsed])
    bad_msg = rows[2][0] + b"?"
    rows[2] = (bad_msg, rows[2][1], rows[2][2])
    parsed = [ref.parse_zip215(*r) for r in rows]
    assert not ref.batch_equation_zip215(parsed, [rng.getrandbits(128) for _ in parsed])
    assert ref.verify_batch_zip215(rows, rng) == [True, True, False, True, True, True]


# ---- RFC 8032 ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,sk,pk,msg,sig", RFC8032_VECTORS, ids=[v[0] for v in RFC8032_VECTORS])
def test_rfc8032_vectors(name, sk, pk, msg, sig):
    seed, pk, msg, sig = (bytes.fromhex(x) for x in (sk, pk, msg, sig))
    assert ref.verify_zip215(msg, sig, pk)
    assert ref.public_key_from_seed(seed) == pk
    assert ref.sign_rfc8032(seed, msg) == sig
    nacl_key = SigningKey(seed)
    assert bytes(nacl_key.verify_key) == pk
    assert nacl_key.sign(msg).signature == sig
    assert libsodium_verify(msg, sig, pk)
    assert not ref.verify_zip215(msg + b"\x00", sig, pk)


# ---- libsodium agreement on honest and corrupted signatures --------------------------------

def test_reference_agrees_with_libsodium_on_honest_and_corrupted():
    cases = honest_and_corrupted(400, seed=5)
    assert 100 < sum(e for *_, e in cases) < 300  # both kinds present
    disagree = [(m.hex(), s.hex(), k.hex(), e) for m, s, k, e in cases if ref.verify_zip215(m, s, k) != e]
    assert disagree == []


def test_reference_rejects_s_plus_l_and_accepts_torsioned_r_where_libsodium_rejects():
    rng = random.Random(6)
    key = SigningKey(rng.randbytes(32))
    pk = bytes(key.verify_key)
    msg = b"malleability"
    sig = key.sign(msg).signature
    s = int.from_bytes(sig[32:], "little")
    s_plus_l = sig[:32] + (s + ref.L).to_bytes(32, "little")
    assert not ref.verify_zip215(msg, s_plus_l, pk) and not libsodium_verify(msg, s_plus_l, pk)
    # A small-order A with S = 0 and small-order R: ZIP-215 accepts, libsodium rejects.
    small = ref.compress(ref.SMALL_ORDER_POINTS[1])
    forged = small + bytes(32)
    assert ref.verify_zip215(b"anything", forged, small)
    assert not libsodium_verify(b"anything", forged, small)


# ---- adversarial cases are self-consistent -------------------------------------------------

def test_adversarial_cases_deterministic_and_mixed():
    a = adversarial_cases(40, seed=7)
    b = adversarial_cases(40, seed=7)
    assert a == b
    verdicts = [e for *_, e in a]
    assert any(verdicts) and not all(verdicts)
    # Every small-order A with small-order R and S = 0 is valid under ZIP-215.
    small = set(ref.small_order_encodings())
    so = [e for m, s, k, e in a if k in small and s[:32] in small and s[32:] == bytes(32)]
    assert len(so) >= 196 and all(so)


def test_adversarial_single_equals_batch_reference():
    cases = adversarial_cases(60, seed=8)
    rng = random.Random(9)
    rows = [(m, s, k) for m, s, k, _ in cases]
    expected = [e for *_, e in cases]
    order = list(range(len(rows)))
    rng.shuffle(order)
    pos = 0
    while pos < len(order):
        size = rng.randint(1, 40)
        part = order[pos : pos + size]
        assert ref.verify_batch_zip215([rows[i] for i in part], rng) == [expected[i] for i in part]
        pos += size
