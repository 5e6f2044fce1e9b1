"""The one 64x64 -> 128-bit product every multi-precision kernel is built on.

Numba has no 128-bit integer type, but LLVM does: this intrinsic zero-extends both
operands to i128, multiplies, and splits the result. On x86-64 LLVM lowers it to a
single `mul`/`mulx`. Keeping it behind one tiny function is deliberate: a CUDA build
of the same field code only has to swap this (``lo = a * b``, ``hi = umul64hi(a, b)``).

128-bit accumulators are `(lo, hi)` tuples of uint64; `mac` adds a product into one.
"""
import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["mul64", "dot128", "mac", "add128", "shr128"]

_U64 = np.uint64
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


@intrinsic
def mul64(typingctx, a, b):
    """(lo, hi) of the full 128-bit product of two uint64 values."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        i64 = ir.IntType(64)
        a_wide = builder.zext(args[0], i128)
        b_wide = builder.zext(args[1], i128)
        product = builder.mul(a_wide, b_wide)
        lo = builder.trunc(product, i64)
        hi = builder.trunc(builder.lshr(product, ir.Constant(i128, 64)), i64)
        return context.make_tuple(builder, signature.return_type, (lo, hi))

    return sig, codegen


@intrinsic
def dot128(typingctx, a, b):
    """(lo, hi) of sum_i a[i] * b[i] for two equal-length tuples of uint64 (the caller keeps
    the sum below 2^128): the products and their sum in LLVM's i128, so the carries are
    `add`/`adc` rather than the compare-and-add a chain of `mac` spells out. A radix-2^51
    multiplication's column is one call (kernels.field25519)."""
    if not (isinstance(a, types.UniTuple) and isinstance(b, types.UniTuple) and a.count == b.count
            and a.dtype == types.uint64 and b.dtype == types.uint64):
        return None
    sig = types.UniTuple(types.uint64, 2)(a, b)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        i64 = ir.IntType(64)
        total = None
        for k in range(signature.args[0].count):
            x = builder.zext(builder.extract_value(args[0], k), i128)
            y = builder.zext(builder.extract_value(args[1], k), i128)
            product = builder.mul(x, y)
            total = product if total is None else builder.add(total, product)
        lo = builder.trunc(total, i64)
        hi = builder.trunc(builder.lshr(total, ir.Constant(i128, 64)), i64)
        return context.make_tuple(builder, signature.return_type, (lo, hi))

    return sig, codegen


if numba.config.DISABLE_JIT:  # the interpreter's twins, for coverage runs (NUMBA_DISABLE_JIT=1)
    def mul64(a, b):  # noqa: F811
        """(lo, hi) of the full 128-bit product of two uint64 values."""
        product = int(a) * int(b)
        return _U64(product & 0xFFFFFFFFFFFFFFFF), _U64(product >> 64)

    def dot128(a, b):  # noqa: F811
        """(lo, hi) of sum_i a[i] * b[i] (below 2^128)."""
        total = sum(int(x) * int(y) for x, y in zip(a, b))
        return _U64(total & 0xFFFFFFFFFFFFFFFF), _U64(total >> 64)


@njit(cache=True, nogil=True)
def add128(acc, lo):
    """acc + lo for a 128-bit (lo, hi) accumulator and a uint64 addend."""
    s = acc[0] + lo
    return (s, acc[1] + (_ONE if s < lo else _ZERO))


@njit(cache=True, nogil=True)
def mac(acc, a, b):
    """acc + a*b for a 128-bit (lo, hi) accumulator (caller keeps the sum below 2^128)."""
    lo, hi = mul64(a, b)
    s = acc[0] + lo
    return (s, acc[1] + hi + (_ONE if s < lo else _ZERO))


@njit(cache=True, nogil=True)
def shr128(acc, n):
    """Low 64 bits of a 128-bit (lo, hi) value shifted right by 0 < n < 64."""
    return (acc[0] >> _U64(n)) | (acc[1] << _U64(64 - n))
