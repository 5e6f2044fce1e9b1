"""Named errors and reasons: the reason codes are part of the checkpoint format and must never
change; first_line makes one short line of any error."""
from __future__ import annotations

import polars as pl
import pytest

from tests.support import ROOT

from engine.model.errors import (
    BizraError,
    CodecError,
    InputError,
    JobInputError,
    KeyAdmissionError,
    Reason,
    UnreadableUpload,
    UnsupportedMediaType,
    UploadTooLarge,
    first_line,
)

# docs/design.md, "Checkpoints": the stored code of every reason. Pinned: changing a number here
# means checkpoints written by an older version are misread.
CHECKPOINT_CODES = {"ok": 0, "bad_signature": 1, "key_mismatch": 2, "unknown_validator": 3, "malformed": 4,
                    "duplicate": 5, "equivocation": 6, "orphan_target": 7, "superseded": 8}


def test_reason_codes_are_the_documented_checkpoint_codes() -> None:
    assert {r.value: r.code for r in Reason} == CHECKPOINT_CODES
    assert [r.code for r in Reason.in_code_order()] == list(range(len(CHECKPOINT_CODES)))
    design = (ROOT / "docs" / "design.md").read_text()
    for value, code in CHECKPOINT_CODES.items():
        assert f"| {code} | `{value}` |" in design, value


def test_reasons_are_strings_and_look_up_by_value() -> None:
    assert Reason("superseded") is Reason.SUPERSEDED and Reason.OK == "ok"
    assert pl.Enum([r.value for r in Reason.in_code_order()]).categories.to_list()[Reason.MALFORMED.code] == "malformed"
    with pytest.raises(ValueError):
        Reason("fine")


def test_error_classes_are_bizra_errors_and_value_errors() -> None:
    for cls in (CodecError, InputError, JobInputError, KeyAdmissionError, UnreadableUpload, UploadTooLarge,
                UnsupportedMediaType):
        assert issubclass(cls, BizraError) and issubclass(cls, ValueError), cls
    assert issubclass(JobInputError, InputError)


def test_first_line_cuts_long_messages_and_names_empty_ones() -> None:
    assert first_line(ValueError("line one\nline two")) == "line one"
    assert first_line(ValueError("x" * 500), limit=10) == "x" * 10
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError("  \n  padded  \n")) == "padded"
