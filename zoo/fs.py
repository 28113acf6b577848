"""Atomic writes: a file or a folder is written beside its final place, then renamed there.

A reader (a resumed run, a server polling a model folder) sees either the old version
or the whole new one, never half a file, and a process killed mid-write leaves only a
hidden temporary (named ``.tmp-*``) that no one reads. Temporary names keep the final
name's suffixes, so libraries that check them (Keras wants ``.keras``, ``.weights.h5``)
write to them directly.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMPORARY_PREFIX = ".tmp-"


def temporary_name(path: Path) -> Path:
    """A hidden, unique name beside ``path`` that ends like it."""
    return path.with_name(f"{TEMPORARY_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.{path.name}")


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically; values JSON lacks are written as strings."""
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextmanager
def atomic_directory(path: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it is renamed to ``path``.

    An existing ``path`` is kept (FileExistsError) unless ``replace``: then the old folder
    is moved aside, the new one renamed in, and only then the old one removed. On error
    the temporary folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    temporary.mkdir()
    try:
        yield temporary
        swap_in(temporary, path, replace=replace)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def swap_in(new: Path, path: Path, *, replace: bool) -> None:
    """Rename the folder ``new`` to ``path``; an existing ``path`` is replaced only if asked."""
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        if not replace:
            raise FileExistsError(f"{path} already exists")
        old = temporary_name(path)
        os.replace(path, old)
        os.replace(new, path)
        shutil.rmtree(old, ignore_errors=True)
        return
    if path.is_dir():
        path.rmdir()  # an empty folder is nothing to lose
    os.replace(new, path)


def remove_temporaries(folder: Path) -> None:
    """Remove what killed writers left behind in ``folder`` and below (``.tmp-*`` entries).

    Only for a folder this process holds the lock of: another writer's are live.
    """
    for leftover in list(folder.rglob(f"{TEMPORARY_PREFIX}*")):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
