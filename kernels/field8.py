"""The eight-lane field arithmetic the x8 kernels use: one of two implementations.

- kernels.field25519x8_ifma (radix 2^51, AVX-512 IFMA 52-bit multiply-accumulate) when the
  CPU Numba compiles for has it (kernels.lanes.HAS_IFMA): about 2.4x faster per product;
- kernels.field25519x8 (radix 2^25.5, 32x32-bit vector products) everywhere else: any
  x86-64 (AVX-512, AVX2 or SSE2, LLVM picks) and other CPUs LLVM vectorizes for.

Both export the same functions with the same contracts (kernels.edwards_x8 is written against
them): every result is a valid input of every function, sums of up to three elements
included (`fe8_sum3`), and conversions to and from the serial radix-2^51 layout. BIZRA_X8_FIELD
= `ifma` or `mul32` overrides the choice (`ifma` where the CPU lacks IFMA is an error); the
Numba cache is keyed by the kernel sources and the CPU, so switching recompiles nothing twice.
"""
import os

import numba

from kernels.lanes import HAS_IFMA

_CHOICES = ("ifma", "mul32")
_requested = os.environ.get("BIZRA_X8_FIELD", "").strip().lower()
if _requested and _requested not in _CHOICES:
    raise ValueError(f"BIZRA_X8_FIELD: expected one of {', '.join(_CHOICES)}, got {_requested!r}")
# Uncompiled (NUMBA_DISABLE_JIT=1) both run anywhere: the IFMA instructions have NumPy twins.
if _requested == "ifma" and not HAS_IFMA and not numba.config.DISABLE_JIT:
    raise ValueError("BIZRA_X8_FIELD=ifma: the CPU Numba compiles for has no AVX-512 IFMA")

# The implementation in use: "ifma" or "mul32".
FIELD8 = _requested or ("ifma" if HAS_IFMA else "mul32")

if FIELD8 == "ifma":
    from kernels.field25519x8_ifma import (  # noqa: F401
        D2_LIMBS, D_LIMBS, LIMBS, SQRTM1_LIMBS, fe8_add, fe8_canonical, fe8_carry, fe8_const,
        fe8_eq, fe8_from51, fe8_from_words, fe8_invert, fe8_is_negative, fe8_is_zero, fe8_mul,
        fe8_neg, fe8_one, fe8_pow22523, fe8_select, fe8_sq, fe8_sq_n, fe8_sub, fe8_sum3,
        fe8_to51, fe8_zero, int_to_limbs,
    )
else:
    from kernels.field25519x8 import (  # noqa: F401
        D2_LIMBS, D_LIMBS, LIMBS, SQRTM1_LIMBS, fe8_add, fe8_canonical, fe8_carry, fe8_const,
        fe8_eq, fe8_from51, fe8_from_words, fe8_invert, fe8_is_negative, fe8_is_zero, fe8_mul,
        fe8_neg, fe8_one, fe8_pow22523, fe8_select, fe8_sq, fe8_sq_n, fe8_sub, fe8_sum3,
        fe8_to51, fe8_zero, int_to_limbs,
    )

__all__ = [
    "FIELD8", "LIMBS", "D_LIMBS", "D2_LIMBS", "SQRTM1_LIMBS", "int_to_limbs", "fe8_zero",
    "fe8_one", "fe8_const", "fe8_add", "fe8_sum3", "fe8_sub", "fe8_neg", "fe8_carry", "fe8_mul",
    "fe8_sq", "fe8_sq_n", "fe8_canonical", "fe8_is_zero", "fe8_eq", "fe8_is_negative",
    "fe8_select", "fe8_invert", "fe8_pow22523", "fe8_from51", "fe8_to51", "fe8_from_words",
]
