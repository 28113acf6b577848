"""One writer per folder: a lock file beside it, held with ``flock`` while the writer runs.

The kernel releases an ``flock`` when its process dies, so a lock left by a killed run
is taken over safely by the next one. The file holds the holder's process id and
command line, which the refusal quotes, and is removed when the lock is released.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from zoo.errors import FolderLockedError


class FolderLock:
    """An exclusive lock on ``folder`` for this process; use as a context manager."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder).expanduser().absolute()
        self.folder = folder
        self.path = folder.parent / f".{folder.name}.lock"
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise FolderLockedError(
                    f"{self.folder} is being written by another zoo process ({holder}); "
                    "wait for it to finish, or choose another folder"
                ) from None
            if _same_file(fd, self.path):  # not unlinked by a holder that just released it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # before unlocking: a waiter then retries on a new file
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
