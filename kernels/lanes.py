"""Eight uint64 lanes as one Numba value: the SIMD type the x8 kernels are written in.

`U64x8` is lowered to LLVM's `<8 x i64>`, so arithmetic on it becomes vector instructions
on any x86-64 (AVX-512: one zmm register; AVX2: two ymm; SSE2: four xmm). LLVM picks the
instructions for the CPU Numba compiles for; nothing here names a CPU feature.

The operations are the few that field arithmetic in radix 2^25.5 needs:
  - `+`, `-`, `&`, `|`, `^` lane by lane (wrapping, like uint64);
  - `a >> k`, `a << k` by an integer k;
  - `mul32(a, b)`: the 64-bit product of the low 32 bits of each lane (one `vpmuludq`);
  - `lanes_eq(a, b)` / `lanes_select(mask, a, b)`: masks are all-ones or all-zero lanes;
  - `splat(x)`, `lane(v, j)`, `with_lane(v, j, x)`, `gather(flat, idx)`.

Values never touch memory unless stored; a tuple of them (a field element is ten) stays in
registers as far as the register file allows.
"""
import operator

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

__all__ = [
    "LANES", "U64x8", "u64x8", "splat", "lane", "with_lane", "mul32", "lanes_eq",
    "lanes_select", "lanes_any", "gather", "lanes_from_array", "lanes_to_array", "zero8",
    "madd52lo", "madd52hi", "HAS_IFMA",
]

LANES = 8
_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_VEC = ir.VectorType(_I64, LANES)


class U64x8(types.Type):
    """Eight uint64 lanes (LLVM <8 x i64>)."""

    def __init__(self):
        super().__init__(name="U64x8")


u64x8 = U64x8()


@register_model(U64x8)
class _U64x8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _const(value):
    return ir.Constant(_VEC, [int(value) & 0xFFFFFFFFFFFFFFFF] * LANES)


def _splat_ir(builder, scalar):
    v = ir.Constant(_VEC, ir.Undefined)
    v = builder.insert_element(v, scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _binary(emit):
    @intrinsic
    def op(typingctx, a, b):
        if a is not u64x8 or b is not u64x8:
            return None

        def codegen(context, builder, signature, args):
            return emit(builder, args[0], args[1])

        return u64x8(u64x8, u64x8), codegen

    return op


_add = _binary(lambda b, x, y: b.add(x, y))
_sub = _binary(lambda b, x, y: b.sub(x, y))
_and = _binary(lambda b, x, y: b.and_(x, y))
_or = _binary(lambda b, x, y: b.or_(x, y))
_xor = _binary(lambda b, x, y: b.xor(x, y))
_mask32 = _const(0xFFFFFFFF)
mul32 = _binary(lambda b, x, y: b.mul(b.and_(x, _mask32), b.and_(y, _mask32)))
mul32.__doc__ = "Lane-wise 64-bit product of the low 32 bits of a and b."
lanes_eq = _binary(lambda b, x, y: b.sext(b.icmp_unsigned("==", x, y), _VEC))
lanes_eq.__doc__ = "All-ones lanes where a == b, zero lanes elsewhere."


def _shift(emit):
    @intrinsic
    def op(typingctx, a, k):
        if a is not u64x8 or not isinstance(k, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            amount = context.cast(builder, args[1], signature.args[1], types.uint64)
            return emit(builder, args[0], _splat_ir(builder, amount))

        return u64x8(u64x8, k), codegen

    return op


_shr = _shift(lambda b, x, k: b.lshr(x, k))
_shl = _shift(lambda b, x, k: b.shl(x, k))


@intrinsic
def splat(typingctx, x):
    """The integer x in all eight lanes."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return _splat_ir(builder, context.cast(builder, args[0], signature.args[0], types.uint64))

    return u64x8(x), codegen


@intrinsic
def zero8(typingctx):
    """Eight zero lanes."""
    def codegen(context, builder, signature, args):
        return _const(0)

    return u64x8(), codegen


@intrinsic
def lane(typingctx, v, j):
    """Lane j of v as a uint64."""
    if v is not u64x8 or not isinstance(j, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.extract_element(args[0], builder.trunc(args[1], _I32))

    return types.uint64(v, j), codegen


@intrinsic
def with_lane(typingctx, v, j, x):
    """v with lane j replaced by x."""
    if v is not u64x8 or not isinstance(j, types.Integer) or not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        scalar = context.cast(builder, args[2], signature.args[2], types.uint64)
        return builder.insert_element(args[0], scalar, builder.trunc(args[1], _I32))

    return u64x8(v, j, x), codegen


@intrinsic
def lanes_select(typingctx, mask, a, b):
    """Lane by lane: a where mask is all-ones, b where it is zero (masks from lanes_eq)."""
    if mask is not u64x8 or a is not u64x8 or b is not u64x8:
        return None

    def codegen(context, builder, signature, args):
        m, x, y = args
        return builder.or_(builder.and_(m, x), builder.and_(builder.xor(m, _const(-1)), y))

    return u64x8(u64x8, u64x8, u64x8), codegen


@intrinsic
def lanes_any(typingctx, v):
    """Whether any lane of v is nonzero."""
    if v is not u64x8:
        return None

    def codegen(context, builder, signature, args):
        acc = builder.extract_element(args[0], ir.Constant(_I32, 0))
        for j in range(1, LANES):
            acc = builder.or_(acc, builder.extract_element(args[0], ir.Constant(_I32, j)))
        return builder.icmp_unsigned("!=", acc, ir.Constant(_I64, 0))

    return types.boolean(v), codegen


@intrinsic
def gather(typingctx, flat, idx):
    """Lane j = flat[idx[j]] for a contiguous 1-D uint64 array (no bounds check).

    LLVM's masked gather: one `vpgatherqq` with AVX2/AVX-512 (measured 2.0 ns against 5.4 ns
    for eight loads and inserts), eight scalar loads elsewhere."""
    if not (isinstance(flat, types.Array) and flat.dtype == types.uint64 and flat.ndim == 1
            and idx is u64x8):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        base = _splat_ir(builder, builder.ptrtoint(ary.data, _I64))
        addresses = builder.add(base, builder.shl(args[1], _const(3)))
        pointers_type = ir.VectorType(_I64.as_pointer(), LANES)
        pointers = builder.inttoptr(addresses, pointers_type)
        fnty = ir.FunctionType(_VEC, [pointers_type, _I32, ir.VectorType(ir.IntType(1), LANES),
                                      _VEC])
        fn = cgutils.get_or_insert_function(builder.module, fnty,
                                            f"llvm.masked.gather.v{LANES}i64.v{LANES}p0")
        all_lanes = ir.Constant(ir.VectorType(ir.IntType(1), LANES), [1] * LANES)
        return builder.call(fn, [pointers, ir.Constant(_I32, 8), all_lanes,
                                 ir.Constant(_VEC, ir.Undefined)])

    return u64x8(flat, idx), codegen


def _madd52(half):
    @intrinsic
    def op(typingctx, acc, a, b):
        if acc is not u64x8 or a is not u64x8 or b is not u64x8:
            return None

        def codegen(context, builder, signature, args):
            fnty = ir.FunctionType(_VEC, [_VEC, _VEC, _VEC])
            fn = cgutils.get_or_insert_function(builder.module, fnty,
                                                f"llvm.x86.avx512.vpmadd52{half}.uq.512")
            return builder.call(fn, list(args))

        return u64x8(u64x8, u64x8, u64x8), codegen

    return op


madd52lo = _madd52("l")
madd52lo.__doc__ = """acc + the low 52 bits of a * b, lane by lane, for a, b < 2^52 (AVX-512 IFMA's
`vpmadd52luq`: only where HAS_IFMA says the target CPU has it)."""
madd52hi = _madd52("h")
madd52hi.__doc__ = """acc + bits 52..103 of a * b, lane by lane, for a, b < 2^52 (`vpmadd52huq`)."""


def _target_features() -> str:
    """The features Numba compiles for: NUMBA_CPU_FEATURES when set, else the host's."""
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    return config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()


# Whether the CPU Numba compiles for has AVX-512 IFMA (52-bit multiply-accumulate), which
# kernels.field8 uses for its radix-2^51 eight-lane arithmetic.
HAS_IFMA = "+avx512ifma" in _target_features().split(",")


def _vector_pointer(context, builder, array_type, array, start):
    ary = context.make_array(array_type)(context, builder, array)
    return builder.bitcast(builder.gep(ary.data, [start]), _VEC.as_pointer())


@intrinsic
def lanes_from_array(typingctx, values, start):
    """values[start:start+8] of a contiguous 1-D uint64 array as lanes (one vector load)."""
    if not (isinstance(values, types.Array) and values.dtype == types.uint64
            and values.ndim == 1 and isinstance(start, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        return builder.load(_vector_pointer(context, builder, signature.args[0], args[0],
                                            args[1]), align=8)

    return u64x8(values, start), codegen


@intrinsic
def lanes_to_array(typingctx, v, out, start):
    """out[start:start+8] = the lanes of v (one vector store)."""
    if not (v is u64x8 and isinstance(out, types.Array) and out.dtype == types.uint64
            and out.ndim == 1 and isinstance(start, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        builder.store(args[0], _vector_pointer(context, builder, signature.args[1], args[1],
                                               args[2]), align=8)
        return context.get_dummy_value()

    return types.void(v, out, start), codegen


def _register_operator(op, impl):
    @overload(op)
    def _ol(a, b):
        if a is u64x8 and b is u64x8:
            return lambda a, b: impl(a, b)
        return None


for _op, _impl in ((operator.add, _add), (operator.sub, _sub), (operator.and_, _and),
                   (operator.or_, _or), (operator.xor, _xor)):
    _register_operator(_op, _impl)


@overload(operator.rshift)
def _ol_rshift(a, k):
    if a is u64x8 and isinstance(k, types.Integer):
        return lambda a, k: _shr(a, k)
    return None


@overload(operator.lshift)
def _ol_lshift(a, k):
    if a is u64x8 and isinstance(k, types.Integer):
        return lambda a, k: _shl(a, k)
    return None


if numba.config.DISABLE_JIT:  # the interpreter's twins, for coverage runs (NUMBA_DISABLE_JIT=1)
    # Eight lanes are a uint64 NumPy array of length 8: the operators above are NumPy's
    # (wrapping, like the vector instructions), and each intrinsic becomes one array expression.
    _ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
    _LOW32 = np.uint64(0xFFFFFFFF)

    def splat(x):  # noqa: F811
        return np.full(LANES, x, dtype=np.uint64)

    def zero8():  # noqa: F811
        return np.zeros(LANES, dtype=np.uint64)

    def lane(v, j):  # noqa: F811
        return np.uint64(v[j])

    def with_lane(v, j, x):  # noqa: F811
        v = v.copy()
        v[j] = x
        return v

    def mul32(a, b):  # noqa: F811
        return (a & _LOW32) * (b & _LOW32)

    def lanes_eq(a, b):  # noqa: F811
        return np.where(a == b, _ALL_ONES, np.uint64(0))

    def lanes_select(mask, a, b):  # noqa: F811
        return (mask & a) | (~mask & b)

    def lanes_any(v):  # noqa: F811
        return bool(v.any())

    def gather(flat, idx):  # noqa: F811
        return flat[idx.astype(np.int64)]

    def lanes_from_array(values, start):  # noqa: F811
        return values[start:start + LANES].copy()

    def lanes_to_array(v, out, start):  # noqa: F811
        out[start:start + LANES] = v

    _LOW52 = (1 << 52) - 1

    def madd52lo(acc, a, b):  # noqa: F811
        prod = [(int(x) & _LOW52) * (int(y) & _LOW52) for x, y in zip(a, b)]
        return acc + np.array([p & _LOW52 for p in prod], dtype=np.uint64)

    def madd52hi(acc, a, b):  # noqa: F811
        prod = [(int(x) & _LOW52) * (int(y) & _LOW52) for x, y in zip(a, b)]
        return acc + np.array([p >> 52 for p in prod], dtype=np.uint64)
