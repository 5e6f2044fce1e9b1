"""Named errors and reasons shared by the codec, keys, verification and the CLI.

Errors are values with names, never strings built ad hoc: row-level outcomes come from
:class:`Reason`, key admission outcomes from :class:`KeyReason`, and anything that
stops a command is one of the exception classes below, caught only at the CLI boundary.
"""

from __future__ import annotations

import enum

__all__ = [
    "BizraError",
    "CodecError",
    "InputError",
    "JobInputError",
    "KeyAdmissionError",
    "KeyReason",
    "OutputError",
    "Reason",
    "UnreadableUpload",
    "UnsupportedMediaType",
    "UploadTooLarge",
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
    """A validator public key fails key admission (docs/design.md, "Key admission")."""


class Reason(str, enum.Enum):
    """Why a row was or was not counted (the `reason` column of job outputs).

    Each reason has a stable integer ``code``: checkpoints store a row's reason as that code
    (uint8; 255 marks a row that passed the row checks and awaits its vote-level reason), and
    the output's `reason` column is an Enum whose categories are the reasons in code order. The
    codes are part of the checkpoint format (docs/design.md, "Checkpoints"): never renumber one,
    only append.
    """

    OK = ("ok", 0)
    BAD_SIGNATURE = ("bad_signature", 1)
    KEY_MISMATCH = ("key_mismatch", 2)
    UNKNOWN_VALIDATOR = ("unknown_validator", 3)
    MALFORMED = ("malformed", 4)
    DUPLICATE = ("duplicate", 5)
    EQUIVOCATION = ("equivocation", 6)
    ORPHAN_TARGET = ("orphan_target", 7)
    SUPERSEDED = ("superseded", 8)

    code: int

    def __new__(cls, value: str, code: int) -> Reason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.code = code
        return member

    @classmethod
    def in_code_order(cls) -> tuple[Reason, ...]:
        """Every reason, sorted by code (the order of the output's Enum categories)."""
        return tuple(sorted(cls, key=lambda r: r.code))


class KeyReason(str, enum.Enum):
    """Why a validator public key is not admitted (None from check_admissible means admitted)."""

    WRONG_LENGTH = "wrong_length"
    NON_CANONICAL = "non_canonical"
    NOT_ON_CURVE = "not_on_curve"
    SMALL_ORDER = "small_order"
    NOT_TORSION_FREE = "not_torsion_free"


class OutputError(BizraError):
    """An output cannot be written (a full disk, a read-only filesystem, no permission, another
    run holding the output directory); the message names the path."""


class UnreadableUpload(BizraError, ValueError):
    """A request body that is not JSON, or not a readable Arrow IPC stream / Parquet file."""


class UploadTooLarge(BizraError, ValueError):
    """An upload that declares more rows than its bytes could honestly hold (a decompression bomb)."""


class UnsupportedMediaType(BizraError, ValueError):
    """An upload in a content type the node does not read."""


class JobInputError(InputError):
    """An input of ``bizra run`` cannot be used; one line naming the file and the problem."""
