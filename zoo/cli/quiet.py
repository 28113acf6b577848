"""Keep TensorFlow's C++ log lines off the user's terminal.

TensorFlow (2.16 and later) logs from C++ through absl as it loads, before Python can
configure anything, and ignores ``TF_CPP_MIN_LOG_LEVEL`` for those lines ("oneDNN
custom operations are on", "Could not find cuda drivers", absl's banner). The CLI
therefore filters file descriptor 2: C-level writes go through a pipe, and a thread
passes on every line except absl-formatted log lines. Python's own ``sys.stderr`` (zoo's
warnings, errors and progress bars) is pointed straight at the original stream, so it
keeps its terminal and its order.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import sys
import threading

#: absl's log line ("I0000 00:00:1795656164.000968    7144 port.cc:153] ...") and banner.
CPP_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)


class CppLogFilter:
    """Filters absl log lines out of file descriptor 2 until ``stop``."""

    def __init__(self) -> None:
        self.original = os.dup(2)
        reader, writer = os.pipe()
        os.dup2(writer, 2)
        os.close(writer)
        self._reader = reader
        self._thread = threading.Thread(target=self._forward, name="zoo-stderr", daemon=True)
        self._thread.start()
        sys.stderr.flush()
        sys.stderr = io.TextIOWrapper(
            os.fdopen(os.dup(self.original), "wb", buffering=0),
            encoding=sys.stderr.encoding,
            errors="backslashreplace",
            line_buffering=True,
        )
        atexit.register(self.stop)

    def _forward(self) -> None:
        with os.fdopen(self._reader, "rb") as lines:
            for line in lines:
                if not CPP_LOG_LINE.match(line):
                    try:
                        os.write(self.original, line)
                    except OSError:
                        pass  # the reader of our stderr left; keep draining the pipe

    def stop(self) -> None:
        """Put the original stream back on descriptor 2; pass on what is still in the pipe."""
        sys.stderr.flush()
        os.dup2(self.original, 2)  # closes the pipe's last writer: the thread sees its end
        self._thread.join(timeout=2)


_active: CppLogFilter | None = None


def filter_cpp_logs() -> CppLogFilter | None:
    """Start filtering, unless descriptor 2 cannot be duplicated (an embedded interpreter)."""
    global _active
    try:
        _active = CppLogFilter()
    except OSError:
        _active = None
    return _active


def stop_filtering() -> None:
    """Give descriptor 2 back (before ``exec``: the filtering thread does not survive it)."""
    if _active is not None:
        _active.stop()
