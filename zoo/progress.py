"""Progress of long steps (checking files, computing features, downloading) on stderr.

On a terminal one line is redrawn in place; in a log (CI, a pipe) a line is written
every ``LOG_INTERVAL`` seconds and when the step ends, so a long step is never silent
and a short one takes one line. The
library reports progress only when its caller asks (``progress=True``); the CLI asks.
"""

from __future__ import annotations

import sys
import time
from typing import IO

BAR_WIDTH = 24
LOG_INTERVAL = 10.0  # seconds between lines in a log


class Progress:
    """Counts work done towards ``total`` and shows it; use as a context manager."""

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        enabled: bool = True,
        unit: str = "",
        stream: IO[str] | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = enabled and bool(total)
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.started = time.monotonic()
        self._drawn = self.started
        self._written: int | None = None  # how much was done when the last line was written

    def __enter__(self) -> Progress:
        self._show()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, amount: int = 1) -> None:
        self.done += amount
        self._show()

    def close(self) -> None:
        if self.enabled and (self.interactive or self._written != self.done):
            self._write(final=True)
        self.enabled = False

    def _show(self) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn >= (0.1 if self.interactive else LOG_INTERVAL):
            self._drawn = now
            self._write(final=False)

    def _write(self, final: bool) -> None:
        self._written = self.done
        if self.interactive:
            self.stream.write("\r" + self._line() + ("\n" if final else ""))
        else:
            self.stream.write(self._line() + "\n")
        self.stream.flush()

    def _line(self) -> str:
        total = self.total or 0
        fraction = min(1.0, self.done / total) if total else 0.0
        filled = int(round(BAR_WIDTH * fraction))
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        elapsed = time.monotonic() - self.started
        amount = f"{_amount(self.done, self.unit)}/{_amount(total, self.unit)}"
        return f"{self.label}: [{bar}] {amount} {fraction:4.0%} {elapsed:5.1f}s"


def _amount(value: int, unit: str) -> str:
    if unit != "B":
        return f"{value}{unit}"
    size = float(value)
    for prefix in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or prefix == "GiB":
            return f"{size:.0f} {prefix}" if prefix == "B" else f"{size:.1f} {prefix}"
        size /= 1024
    return f"{size:.1f} GiB"
