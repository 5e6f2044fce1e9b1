"""Progress of a long run (rows, rows/s, ETA) on stderr, drawn by tqdm, only when stderr is a
terminal: logs and CI stay free of carriage-return noise unless ``force=True``.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress"]

_FORMAT = "{desc:>10} {percentage:3.0f}%|{bar:24}| {n:,}/{total:,} rows {rate_fmt} ETA {remaining}"


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
        stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(stream, "isatty", None)
            enabled = force or bool(isatty and isatty())
        self.enabled = enabled
        # tqdm's own tty test is not used: a forced bar must draw into a pipe or a StringIO too.
        self._bar = tqdm(total=max(int(total), 0), desc=label, unit=" rows", unit_scale=True, file=stream,
                         disable=not enabled, mininterval=min_interval, bar_format=_FORMAT, leave=True)

    @property
    def done(self) -> int:
        return int(self._bar.n)

    def update(self, rows: int) -> None:
        """Count ``rows`` more finished rows (redrawn at most every ``min_interval`` s)."""
        self._bar.update(int(rows))

    def close(self) -> None:
        """Draw the final state and end the line (only if the bar is shown)."""
        self._bar.close()
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
