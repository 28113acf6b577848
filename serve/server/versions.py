"""Which versions of a model to serve: the folders TF Serving would see, and its version policy.

TF Serving's file-system source lists a model's base path; a child whose name parses as a
non-negative int64 is that version (``123``, and ``00000123`` as in TF Serving's own test
data), other names are ignored, and when two names give one number the later listed one
wins with a warning (sources/storage_path/file_system_storage_path_source.cc). The version
policy then picks: the latest N (1 by default), all, or specific versions.
"""

from __future__ import annotations

import logging
from pathlib import Path

from zoo.serve.config import ModelEntry

log = logging.getLogger("zoo.serve")

INT64_MAX = 2**63 - 1


def parse_version(name: str) -> int | None:
    """The version a folder name stands for: decimal ASCII digits within int64, else None."""
    if not name.isascii() or not name.isdigit():  # "²" is a digit to str.isdigit, not to int
        return None
    number = int(name)
    return number if number <= INT64_MAX else None


def versions_on_disk(base: Path) -> dict[int, Path]:
    """Every version folder under ``base``, by number."""
    base = Path(base)
    try:
        children = sorted(base.iterdir())
    except OSError:  # missing, not a folder, unreadable: no versions yet
        return {}
    found: dict[int, Path] = {}
    for child in children:
        number = parse_version(child.name)
        if number is None or not child.is_dir():
            continue
        if number in found:
            log.warning(
                "duplicate version folders for version %d: %s is served, %s ignored",
                number, child, found[number],
            )  # fmt: skip
        found[number] = child
    return found


def wanted_versions(entry: ModelEntry, available: dict[int, Path]) -> dict[int, Path]:
    """The versions the model's version policy asks for, among those available."""
    if entry.policy == "all":
        return dict(available)
    if entry.policy == "specific":
        return {n: p for n, p in available.items() if n in entry.versions}
    latest = sorted(available)[-entry.latest :] if available else []
    return {n: available[n] for n in latest}
