"""One writer per output directory: the lock's own behaviour (engine/pipeline/out_lock.py); the
two-runs-on-one-OUT scenario with real processes is in test_job.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.pipeline.out_lock import OutputBusy, busy, hold, holder


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert busy(out) is None and not out.exists()  # asking touches nothing
    with hold(out):
        assert holder(out) == os.getpid() and busy(out) == os.getpid()
        with pytest.raises(OutputBusy, match=f"^{out}: in use by another bizra run \\(pid {os.getpid()}\\)"):
            with hold(out):
                pass
    assert busy(out) is None and (out / ".lock").exists()  # released; the file stays
    with hold(out):  # and can be taken again
        pass


def test_the_kernel_releases_the_lock_of_a_killed_holder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = ("import sys, time; from pathlib import Path; from engine.pipeline.out_lock import hold\n"
            "with hold(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert busy(out) == proc.pid
    finally:
        proc.kill()
        proc.wait(30)
    assert busy(out) is None and holder(out) == proc.pid  # a stale pid in a free lock is harmless
    with hold(out):
        assert holder(out) == os.getpid()
