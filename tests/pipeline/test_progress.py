"""The progress bar: quiet unless stderr is a terminal (or forced), rows, rate and ETA when drawn."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.model.attestation import BODY_SIZE, binary_to_array
from engine.cli import main
from engine.verification.keys import read_secret_keys
from engine.verification.api import verify_many


def test_progress_bar_only_when_forced_or_tty() -> None:
    import io

    from engine.pipeline.progress import Progress

    quiet = io.StringIO()
    with Progress(10, "x", stream=quiet) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""
    loud = io.StringIO()
    with Progress(10, "sign", stream=loud, force=True, min_interval=0) as bar:
        bar.update(4)
        bar.update(6)
    text = loud.getvalue()
    assert "10/10 rows" in text and "rows/s" in text and "ETA" in text and text.endswith("\n")


