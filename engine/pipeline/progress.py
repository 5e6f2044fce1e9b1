"""A tiny progress bar: rows, rows/s and ETA on stderr, only when stderr is a terminal.

Logs and CI stay clean (no carriage-return noise) unless ``force=True``.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Progress over a known number of rows.

    Example::

        with Progress(total=n, label="sign") as bar:
            for chunk in chunks:
                ...
                bar.update(len(chunk))
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        force: bool = False,
        enabled: bool | None = None,
        min_interval: float = 0.2,
    ) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = force or bool(isatty and isatty())
        self.enabled = enabled
        self.done = 0
        self.min_interval = min_interval
        self._start = time.perf_counter()
        self._last = 0.0

    def update(self, rows: int) -> None:
        """Count ``rows`` more finished rows and redraw at most every ``min_interval`` s."""
        self.done += int(rows)
        now = time.perf_counter()
        if self.enabled and (now - self._last >= self.min_interval or self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        width = 24
        fill = int(frac * width)
        eta_txt = f"{eta:5.0f}s" if eta != float("inf") else "   ?s"
        line = (
            f"\r{self.label:>10} [{'#' * fill}{'.' * (width - fill)}] "
            f"{self.done:>10,}/{self.total:,} rows {rate:>10,.0f} rows/s ETA {eta_txt}"
        )
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        """Finish the line (only if anything was drawn)."""
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
