"""One writer per output directory: an exclusive ``fcntl.flock`` on ``OUT/.lock``, held for the
whole of a ``bizra run`` (checkpoint, chunks, outputs, cleanup), by the command line and by the
service's job runner alike.

A second run on the same OUT does not wait: it stops at once with :class:`OutputBusy`, one line
naming the holder's pid (written into the lock file by the holder), and ``--restart`` is refused
the same way, so it can never delete a live run's checkpoint. The kernel releases the lock when
the holder exits, however it exits (``kill -9`` included), so a stale lock file is harmless; the
file is never deleted (deleting it would let two runs lock two different files).

Example::

    with hold(Path("out")):
        ...   # the only writer of out/
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from engine.model.errors import OutputError

__all__ = ["LOCK_NAME", "OutputBusy", "busy", "holder", "hold"]

LOCK_NAME = ".lock"


class OutputBusy(OutputError):
    """Another live process holds the output directory's lock."""


def holder(out: Path) -> int | None:
    """The pid written in ``out/.lock`` (None when unreadable or empty)."""
    try:
        text = (out / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def busy(out: Path) -> int | None:
    """The pid of a live holder of ``out``'s lock (0 when it wrote none yet), None when free.
    Touches nothing: a missing lock file is a free output. Example: ``busy(Path("out")) is None``."""
    try:
        fd = os.open(out / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return holder(out) or 0
    finally:
        os.close(fd)
    return None


@contextlib.contextmanager
def hold(out: Path) -> Iterator[None]:
    """Create ``out`` if needed and hold its lock until the block ends; OutputBusy when another
    process holds it."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = holder(out)
            for _ in range(20):  # the holder writes its pid right after it locks: a moment's wait
                if pid is not None:
                    break
                time.sleep(0.01)
                pid = holder(out)
            raise OutputBusy(f"{out}: in use by another bizra run (pid {pid if pid is not None else 'unknown'}); "
                             "wait for it to finish or choose another output directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock
