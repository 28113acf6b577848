"""Atomic files and folders, and the per-folder lock, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from zoo import FolderLockedError
from zoo.fs import atomic_directory, atomic_file, remove_temporaries, write_json
from zoo.locks import FolderLock


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_atomic_file_keeps_the_suffixes_and_leaves_nothing_on_error(folder):
    target = folder / "model.weights.h5"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as partial:
        assert partial.name.endswith(".model.weights.h5") and partial.name.startswith(".tmp-")
        partial.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and sorted(folder.iterdir()) == [target]
    with atomic_file(target) as partial:
        partial.write_bytes(b"new")
    assert target.read_bytes() == b"new" and sorted(folder.iterdir()) == [target]


def test_atomic_directory_replaces_only_when_asked(tmp_path):
    version = tmp_path / "models" / "1"
    with atomic_directory(version) as staging:
        (staging / "saved_model.pb").write_bytes(b"one")
    with pytest.raises(FileExistsError), atomic_directory(version) as staging:
        (staging / "saved_model.pb").write_bytes(b"two")
    assert (version / "saved_model.pb").read_bytes() == b"one"
    with atomic_directory(version, replace=True) as staging:
        (staging / "saved_model.pb").write_bytes(b"two")
    assert (version / "saved_model.pb").read_bytes() == b"two"
    assert [p.name for p in version.parent.iterdir()] == ["1"]  # no staging left behind


def test_a_writer_killed_midway_leaves_only_a_temporary_that_is_cleaned(folder):
    script = textwrap.dedent(
        """
        import os, signal, sys
        from zoo.fs import atomic_file
        with atomic_file(sys.argv[1]) as partial:
            partial.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    target = folder / "state.json"
    write_json(target, {"epochs_done": 1})
    done = subprocess.run([sys.executable, "-c", script, str(target)])
    assert done.returncode == -signal.SIGKILL
    leftovers = [p for p in folder.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".tmp-")
    assert target.read_text().strip().endswith("}")  # the old file is whole
    remove_temporaries(folder)
    assert list(folder.iterdir()) == [target]


HOLD = textwrap.dedent(
    """
    import sys
    from zoo.locks import FolderLock
    lock = FolderLock(sys.argv[1]).acquire()
    print("held", flush=True)
    sys.stdin.readline()
    """
)


def test_second_writer_is_refused_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderLockedError, match=f"another zoo process \\(pid {holder.pid}: "):
            FolderLock(folder).acquire()
    finally:
        holder.kill()  # SIGKILL: the lock file stays, the kernel drops the lock
        holder.wait()
    assert (tmp_path / ".run.lock").exists()
    with FolderLock(folder):
        assert str(os.getpid()) in (tmp_path / ".run.lock").read_text()
    assert not (tmp_path / ".run.lock").exists()
