"""Fetching catalog weights: download once, verify, keep under ``zoo_home()/weights``.

A download goes to ``<file>.part`` and is moved into place only once verified, so a
reader never sees half a file; an interrupted download resumes from its ``.part``. When
the network is out of reach the error says exactly which file to fetch, where to put it
and which checksum it must have. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import shutil
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import requests

from zoo.errors import DownloadError, WeightsError, WeightsWarning
from zoo.fs import temporary_name
from zoo.paths import zoo_home
from zoo.progress import Progress
from zoo.spec import WeightSource

CHUNK_SIZE = 64 * 1024
TIMEOUT = (10, 60)
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
MIRROR_ENV = "ZOO_WEIGHTS_MIRROR"
OFFLINE_ENV = "ZOO_OFFLINE"

Checksum = tuple[str, str] | None
Reader = Callable[[], IO[bytes]]


def weights_cache_dir() -> Path:
    """Where downloaded weights live, so every project on the machine shares them."""
    return zoo_home() / "weights"


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks so large weights never sit in memory."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_weights(source: WeightSource, *, backbone: str = "", progress: bool = True) -> Path:
    """Return a local path for the weight source, downloading and verifying it if needed."""
    owner = _owner(source, backbone)
    if source.path is not None:
        return _local_path(source.path, source.checksum, owner)
    assert source.url is not None
    basename = _url_basename(source.url, owner)
    if source.member and basename.endswith(ARCHIVE_SUFFIXES):
        extracted = weights_cache_dir() / _archive_stem(basename) / source.member
        if _present(extracted):
            return extracted
        archive = _fetch_url(source, basename, owner, progress)
        return _extract_member(archive, source.member, owner)
    return _fetch_url(source, basename, owner, progress)


def _owner(source: WeightSource, backbone: str) -> str:
    """The words that start every message, so the user knows which catalog entry failed."""
    if backbone:
        return f"backbone '{backbone}' weights '{source.name}'"
    return f"weights '{source.name}'"


def _local_path(path: str, checksum: Checksum, owner: str) -> Path:
    """A local file, directory or checkpoint prefix, which must exist (and verify, if a
    checksum is recorded for a file)."""
    local = Path(path).expanduser()
    if local.is_file() and not _verifies(local, checksum):
        assert checksum is not None
        raise WeightsError(
            f"{owner}: {local} does not match its recorded {checksum[0]} {checksum[1]}; the "
            "file was changed or damaged: restore it (reinstall zoo for the weights it ships)"
        )
    if _present(local):
        return local
    raise WeightsError(
        f"{owner}: {local} does not exist (neither a file, a folder nor a checkpoint prefix "
        "with a .index file); put the weights there or correct the path"
    )


def _present(path: Path) -> bool:
    """True for a file, a folder, or a TF checkpoint prefix (``<prefix>.index`` exists)."""
    return path.exists() or path.with_name(path.name + ".index").exists()


def _fetch_url(source: WeightSource, basename: str, owner: str, progress: bool) -> Path:
    """The verified cached copy of ``source.url``, downloaded only when missing or bad."""
    assert source.url is not None
    dest = weights_cache_dir() / basename
    checksum = source.checksum
    if dest.is_file():
        if _verifies(dest, checksum):
            return dest
        dest.unlink()
    url = _effective_url(source.url)
    if _offline() and not url.startswith("file://"):
        raise _offline_error(owner, url, dest, checksum, f"{OFFLINE_ENV}=1 is set")
    if checksum is None:
        warnings.warn(
            f"{owner}: no checksum is recorded for {url}; {dest} is downloaded unverified",
            WeightsWarning,
            stacklevel=3,
        )
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _download(url, part, dest, checksum, owner, progress)
    except OSError as exc:
        raise DownloadError(
            f"{owner}: cannot write {part}: {exc}; free some disk space or point ZOO_HOME "
            "at a writable folder"
        ) from exc
    _verify_or_discard(part, url, checksum, owner)
    os.replace(part, dest)
    return dest


def _url_basename(url: str, owner: str) -> str:
    """The file name a URL names, which is also its name in the cache."""
    name = unquote(posixpath.basename(urlsplit(url).path))
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        raise WeightsError(
            f"{owner}: the URL {url} does not end in a file name; fix the url in the catalog"
        )
    return name


def _effective_url(url: str) -> str:
    """The URL to fetch: the original, or the same file name under ``$ZOO_WEIGHTS_MIRROR``."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    return f"{mirror.rstrip('/')}/{posixpath.basename(urlsplit(url).path)}"


def _offline() -> bool:
    """True when the user asked zoo never to touch the network."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def _verifies(path: Path, checksum: Checksum) -> bool:
    """True when the file matches the checksum; a file without a checksum always passes."""
    if checksum is None:
        return True
    algorithm, expected = checksum
    return file_digest(path, algorithm) == expected


def _verify_or_discard(part: Path, url: str, checksum: Checksum, owner: str) -> None:
    """Delete a download that fails its checksum, so a bad file is never used or resumed."""
    if checksum is None:
        return
    algorithm, expected = checksum
    actual = file_digest(part, algorithm)
    if actual == expected:
        return
    part.unlink(missing_ok=True)
    raise DownloadError(
        f"{owner}: {url} failed verification: expected {algorithm} {expected}, got {actual}; "
        "the file was deleted. Try again; if it fails again the file on the server has "
        "changed and the catalog's checksum needs updating"
    )


def _offline_error(
    owner: str, url: str, dest: Path, checksum: Checksum, reason: str
) -> DownloadError:
    """The message that lets a user on an offline machine put the file in place by hand."""
    expect = f"{checksum[0]} {checksum[1]}" if checksum else "no checksum recorded"
    return DownloadError(
        f"{owner}: cannot download {url} ({reason}); if this machine is offline, fetch that "
        f"file elsewhere and put it at {dest} ({expect})"
    )


def _download(
    url: str, part: Path, dest: Path, checksum: Checksum, owner: str, progress: bool
) -> None:
    """Fill ``part`` with the whole file, resuming from what an earlier attempt left."""
    if url.startswith("file://"):
        _copy_local_url(url, part, owner)
        return
    offset = part.stat().st_size if part.exists() else 0
    response = _request(url, offset, part, dest, checksum, owner)
    with response:
        resumed = offset > 0 and response.status_code == 206
        if not resumed:
            offset = 0
        remaining = _content_length(response)
        total = offset + remaining if remaining is not None else None
        try:
            with open(part, "ab" if resumed else "wb") as stream:
                written = _stream_body(response, stream, total, offset, progress, dest.name)
        except requests.RequestException as exc:
            raise _interrupted(owner, url, part, _reason(exc)) from exc
    if remaining is not None and written < remaining:
        raise _interrupted(owner, url, part, "the server closed the connection early")


def _request(
    url: str, offset: int, part: Path, dest: Path, checksum: Checksum, owner: str
) -> requests.Response:
    """Open the download, asking for the rest of the file when a ``.part`` exists."""
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = requests.get(url, headers=headers, stream=True, timeout=TIMEOUT)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _offline_error(owner, url, dest, checksum, _reason(exc)) from exc
    except requests.RequestException as exc:
        raise DownloadError(f"{owner}: cannot download {url}: {exc}; check the URL") from exc
    if response.status_code == 416 and offset:
        response.close()
        part.unlink(missing_ok=True)
        return _request(url, 0, part, dest, checksum, owner)
    if response.status_code >= 400:
        response.close()
        raise DownloadError(
            f"{owner}: cannot download {url}: the server answered HTTP {response.status_code} "
            f"{response.reason}; check the URL (or {MIRROR_ENV}), or fetch the file elsewhere "
            f"and put it at {dest}"
        )
    return response


def _stream_body(
    response: requests.Response,
    stream: IO[bytes],
    total: int | None,
    offset: int,
    progress: bool,
    label: str,
) -> int:
    """Copy the body to ``stream`` chunk by chunk, returning how many bytes arrived."""
    written = 0
    with Progress(f"Downloading {label}", total, enabled=progress, unit="B") as bar:
        bar.update(offset)
        for chunk in response.iter_content(CHUNK_SIZE):
            stream.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
    return written


def _interrupted(owner: str, url: str, part: Path, reason: str) -> DownloadError:
    """The download broke off; the ``.part`` file stays so the next call resumes."""
    return DownloadError(
        f"{owner}: download of {url} was interrupted ({reason}); {part} keeps what arrived "
        "and the next attempt will resume from there: run the same command again"
    )


def _content_length(response: requests.Response) -> int | None:
    """The body length the server announced, or None when it did not say."""
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _reason(exc: BaseException) -> str:
    """A short cause from requests' long nested message, such as 'Connection refused'."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip().lower()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return text or type(exc).__name__


def _copy_local_url(url: str, part: Path, owner: str) -> None:
    """A ``file://`` URL is copied like a download, so it is verified and cached the same."""
    source = Path(url2pathname(urlsplit(url).path))
    if not source.is_file():
        raise DownloadError(f"{owner}: {source} (from {url}) does not exist; fix the url")
    shutil.copyfile(source, part)


def _extract_member(archive: Path, member: str, owner: str) -> Path:
    """The file or checkpoint prefix ``member`` from a downloaded archive, extracted once."""
    folder = weights_cache_dir() / _archive_stem(archive.name)
    try:
        with _open_archive(archive) as entries:
            names = [name for name, _ in entries]
            _refuse_unsafe(names, archive, owner)
            wanted = [(name, read) for name, read in entries if _matches(name, member)]
            if not wanted:
                found = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                raise WeightsError(
                    f"{owner}: {archive} holds no member named '{member}' "
                    f"(found: {found or 'nothing'}); fix 'member' in the catalog entry"
                )
            _extract_into(folder, member, wanted)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise WeightsError(
            f"{owner}: cannot extract {member!r} from {archive}: {exc}; if the archive is "
            "damaged, delete it so the next call downloads it again"
        ) from exc
    return folder / member


def _archive_stem(name: str) -> str:
    """The archive's name without its extension, which names its extraction folder."""
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _matches(name: str, member: str) -> bool:
    """A checkpoint is a prefix plus ``.index`` and ``.data-*`` files: take them all."""
    base = posixpath.basename(name)
    return base == member or base.startswith(member + ".")


def _refuse_unsafe(names: list[str], archive: Path, owner: str) -> None:
    """An archive naming absolute paths or ``..`` is hostile or broken; use none of it."""
    for name in names:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or re.match(r"[A-Za-z]:", name):
            raise WeightsError(
                f"{owner}: refusing {archive}: its member {name!r} would be written outside "
                "the extraction folder; delete the archive and check where it came from"
            )


@contextlib.contextmanager
def _open_archive(archive: Path) -> Iterator[list[tuple[str, Reader]]]:
    """The archive's regular files as (name, open-for-reading) pairs, tar or zip alike."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            yield [
                (info.filename, lambda info=info: zipped.open(info))
                for info in zipped.infolist()
                if not info.is_dir()
            ]
    else:
        with tarfile.open(archive, "r:*") as tarred:
            yield [
                (info.name, lambda info=info: tarred.extractfile(info))
                for info in tarred.getmembers()
                if info.isfile()
            ]


def _extract_into(folder: Path, member: str, wanted: list[tuple[str, Reader]]) -> None:
    """Write the matching members flat into ``folder``, the file that marks it done last.

    Files are written to a scratch folder beside it and moved in one by one; the member
    itself (or its ``.index``) moves last, so a present target means a complete extraction.
    """
    folder.mkdir(parents=True, exist_ok=True)
    scratch = temporary_name(folder)
    scratch.mkdir()
    try:
        for name, read in wanted:
            with read() as source, open(scratch / posixpath.basename(name), "wb") as out:
                shutil.copyfileobj(source, out)
        markers = (member, member + ".index")
        for path in sorted(scratch.iterdir(), key=lambda p: p.name in markers):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
