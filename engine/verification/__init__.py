"""Signature verification: the public API and backend dispatch (api), the Numba ZIP-215 backend
(numba_backend), the libsodium backend (sodium_backend), keys: signing, secret key files and key
admission (keys), and the public conformance suites with their ZIP-215 verdicts (conformance,
data in vectors/)."""
