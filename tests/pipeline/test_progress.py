"""The progress bar: quiet unless stderr is a terminal (or forced), rows, rate and ETA when drawn."""
from __future__ import annotations

import os


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




def test_progress_bar_draws_on_a_terminal() -> None:
    """Not forced: a stream that is a terminal gets the bar (tqdm), a pipe gets nothing."""
    import io
    import pty

    from engine.pipeline.progress import Progress

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as tty:
        with Progress(5, "generate", stream=tty, min_interval=0) as bar:
            assert bar.enabled
            bar.update(5)
    drawn = b""
    while True:  # everything written before the follower closed, then EIO
        try:
            block = os.read(leader, 4096)
        except OSError:
            break
        if not block:
            break
        drawn += block
    os.close(leader)
    drawn = drawn.decode()
    assert "generate" in drawn and "5/5 rows" in drawn and "ETA" in drawn
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe, Progress(5, "x", stream=pipe) as bar:
        bar.update(5)
    with os.fdopen(read_end) as f:
        assert f.read() == ""
    assert not Progress(1, stream=io.StringIO()).enabled
