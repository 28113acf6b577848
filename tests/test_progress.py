"""Progress on stderr: one line per step in a log, a line redrawn in place on a terminal."""

from __future__ import annotations

import io

import zoo.progress
from zoo.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_short_step_in_a_log_is_one_line():
    log = io.StringIO()
    with Progress("Checking files", 5, stream=log) as bar:
        for _ in range(5):
            bar.update()
    (line,) = log.getvalue().splitlines()
    assert line.startswith("Checking files: [" + "#" * 24 + "] 5/5 100%")


def test_a_long_step_in_a_log_reports_as_it_goes(monkeypatch):
    monkeypatch.setattr(zoo.progress, "LOG_INTERVAL", 0.0)
    log = io.StringIO()
    with Progress("Downloading x.h5", 3 * 1024 * 1024, stream=log, unit="B") as bar:
        for _ in range(3):
            bar.update(1024 * 1024)
    lines = log.getvalue().splitlines()
    assert [line.split()[3] for line in lines] == ["0", "1.0", "2.0", "3.0"]  # MiB, no repeat
    assert lines[-1].split("] ")[1].startswith("3.0 MiB/3.0 MiB 100%")


def test_a_terminal_gets_one_line_redrawn_and_quiet_means_nothing():
    terminal = Terminal()
    with Progress("Computing features", 2, stream=terminal) as bar:
        bar.update(2)
    assert terminal.getvalue().startswith("\r") and terminal.getvalue().count("\n") == 1
    quiet = io.StringIO()
    with Progress("Computing features", 2, stream=quiet, enabled=False) as bar:
        bar.update(2)
    assert quiet.getvalue() == ""
