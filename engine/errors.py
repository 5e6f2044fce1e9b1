"""Named errors and reasons shared by the codec, keys, verification and the CLI.

Errors are values with names (see ../shared/STYLE.md): row-level outcomes come from
:class:`Reason`, key admission outcomes from :class:`KeyReason`, and anything that
stops a command is one of the exception classes below, caught only at the CLI boundary.
"""

from __future__ import annotations

import enum

__all__ = [
    "BizraError",
    "CodecError",
    "InputError",
    "KeyAdmissionError",
    "KeyReason",
    "Reason",
    "first_line",
]


def first_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's message cut to one short line (Polars errors span many); its type name
    when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class BizraError(Exception):
    """Base of every expected error; the CLI prints it as one line and exits non-zero."""


class CodecError(BizraError, ValueError):
    """A body, column or hex string does not decode; the message names the field.

    Example: ``CodecError("poi_score: 1000001 > 1000000")``.
    """


class InputError(BizraError, ValueError):
    """An input file is missing, unreadable, not Parquet, or has wrong columns."""


class KeyAdmissionError(BizraError, ValueError):
    """A validator public key fails the admission policy of DESIGN section 4."""


class Reason(str, enum.Enum):
    """Why a row was or was not counted (the `reason` column of job outputs)."""

    OK = "ok"
    BAD_SIGNATURE = "bad_signature"
    KEY_MISMATCH = "key_mismatch"
    UNKNOWN_VALIDATOR = "unknown_validator"
    MALFORMED = "malformed"
    DUPLICATE = "duplicate"
    EQUIVOCATION = "equivocation"
    ORPHAN_TARGET = "orphan_target"
    SUPERSEDED = "superseded"


class KeyReason(str, enum.Enum):
    """Why a validator public key is not admitted (None from check_admissible means admitted)."""

    WRONG_LENGTH = "wrong_length"
    NON_CANONICAL = "non_canonical"
    NOT_ON_CURVE = "not_on_curve"
    SMALL_ORDER = "small_order"
    NOT_TORSION_FREE = "not_torsion_free"
