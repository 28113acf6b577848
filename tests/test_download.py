"""fetch_weights against a real HTTP server on 127.0.0.1: caching, resuming, verifying."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

from zoo.errors import DownloadError, WeightsError
from zoo.spec import WeightSource
from zoo.weights.download import fetch_weights, file_digest, weights_cache_dir

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB, many chunks


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def closed_port() -> int:
    """A port nothing listens on: bound, noted, released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_download_with_sha256(server):
    url = server.serve("nets/resnet.h5", PAYLOAD)
    path = fetch_weights(WeightSource("imagenet", url=url, sha256=sha256(PAYLOAD)))
    assert path == weights_cache_dir() / "resnet.h5"
    assert path.read_bytes() == PAYLOAD
    assert not Path(f"{path}.part").exists()
    assert file_digest(path, "sha256") == sha256(PAYLOAD)


def test_download_with_md5_and_no_progress_bar(server):
    url = server.serve("vgg.h5", PAYLOAD)
    path = fetch_weights(WeightSource("imagenet", url=url, md5=md5(PAYLOAD)), progress=False)
    assert path.read_bytes() == PAYLOAD
    assert file_digest(path, "md5") == md5(PAYLOAD)


def test_cached_file_is_reused_without_a_request(server):
    url = server.serve("vgg.h5", PAYLOAD)
    cached = weights_cache_dir() / "vgg.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD)
    assert fetch_weights(WeightSource("imagenet", url=url, md5=md5(PAYLOAD))) == cached
    assert server.requests == []


def test_cached_file_failing_verification_is_downloaded_again(server):
    url = server.serve("vgg.h5", PAYLOAD)
    cached = weights_cache_dir() / "vgg.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"corrupt")
    path = fetch_weights(WeightSource("imagenet", url=url, sha256=sha256(PAYLOAD)))
    assert path.read_bytes() == PAYLOAD
    assert len(server.requests) == 1


def test_checksum_mismatch_keeps_no_file(server):
    url = server.serve("vgg.h5", PAYLOAD)
    wrong = sha256(b"something else")
    with pytest.raises(DownloadError) as caught:
        fetch_weights(WeightSource("imagenet", url=url, sha256=wrong), backbone="vgg16")
    message = str(caught.value)
    assert url in message and wrong in message and sha256(PAYLOAD) in message
    assert "vgg16" in message
    dest = weights_cache_dir() / "vgg.h5"
    assert not dest.exists()
    assert not Path(f"{dest}.part").exists()


def test_interrupted_download_resumes_from_the_part_file(server):
    url = server.serve("big.h5", PAYLOAD)
    source = WeightSource("imagenet", url=url, sha256=sha256(PAYLOAD))
    dest = weights_cache_dir() / "big.h5"
    part = Path(f"{dest}.part")

    server.cut_after = 600_000
    with pytest.raises(DownloadError, match="interrupted.*resume"):
        fetch_weights(source)
    assert not dest.exists()
    kept = part.stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert part.read_bytes() == PAYLOAD[:kept]

    server.cut_after = None
    assert fetch_weights(source).read_bytes() == PAYLOAD
    assert server.requests[-1]["Range"] == f"bytes={kept}-"
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(server):
    url = server.serve("big.h5", PAYLOAD)
    dest = weights_cache_dir() / "big.h5"
    dest.parent.mkdir(parents=True)
    Path(f"{dest}.part").write_bytes(b"stale bytes from another file")
    server.ignore_range = True
    path = fetch_weights(WeightSource("imagenet", url=url, sha256=sha256(PAYLOAD)))
    assert path.read_bytes() == PAYLOAD
    assert server.requests[0]["Range"] == "bytes=29-"


def test_http_404_names_the_status_and_url(server):
    url = f"{server.base_url}/missing.h5"
    with pytest.raises(DownloadError, match="404") as caught:
        fetch_weights(WeightSource("imagenet", url=url, md5=md5(PAYLOAD)))
    assert url in str(caught.value)


def test_unreachable_server_says_where_to_put_the_file():
    url = f"http://127.0.0.1:{closed_port()}/weights/vgg.h5"
    with pytest.raises(DownloadError) as caught:
        fetch_weights(WeightSource("imagenet", url=url, md5=md5(PAYLOAD)), backbone="vgg16")
    message = str(caught.value)
    assert url in message
    assert str(weights_cache_dir() / "vgg.h5") in message
    assert f"md5 {md5(PAYLOAD)}" in message
    assert "offline" in message


def test_zoo_offline_never_touches_the_network(server, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    url = server.serve("vgg.h5", PAYLOAD)
    with pytest.raises(DownloadError) as caught:
        fetch_weights(WeightSource("imagenet", url=url, sha256=sha256(PAYLOAD)))
    message = str(caught.value)
    assert url in message
    assert str(weights_cache_dir() / "vgg.h5") in message
    assert f"sha256 {sha256(PAYLOAD)}" in message
    assert server.requests == []


def test_mirror_serves_the_file_instead_of_the_original(make_server, monkeypatch):
    original = make_server("original")
    mirror = make_server("mirror")
    url = original.serve("deep/folder/vgg.h5", PAYLOAD)
    mirror.serve("vgg.h5", PAYLOAD)
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", mirror.base_url + "/")

    path = fetch_weights(WeightSource("imagenet", url=url, md5=md5(PAYLOAD)))
    assert path.read_bytes() == PAYLOAD
    assert [r["path"] for r in mirror.requests] == ["/vgg.h5"]
    assert original.requests == []

    missing = original.serve("other.h5", PAYLOAD)
    with pytest.raises(DownloadError, match="404") as caught:
        fetch_weights(WeightSource("imagenet", url=missing, md5=md5(PAYLOAD)))
    assert f"{mirror.base_url}/other.h5" in str(caught.value)


def test_unverified_source_warns(server):
    url = server.serve("vgg.h5", PAYLOAD)
    with pytest.warns(UserWarning, match="unverified"):
        path = fetch_weights(WeightSource("imagenet", url=url))
    assert path.read_bytes() == PAYLOAD


def test_file_url_is_copied_and_verified(tmp_path):
    local = tmp_path / "local.h5"
    local.write_bytes(PAYLOAD)
    source = WeightSource("imagenet", url=local.as_uri(), sha256=sha256(PAYLOAD))
    assert fetch_weights(source) == weights_cache_dir() / "local.h5"


def test_local_path_missing_names_backbone_weights_and_path(tmp_path):
    missing = tmp_path / "nowhere" / "weights.h5"
    with pytest.raises(WeightsError) as caught:
        fetch_weights(WeightSource("mine", path=str(missing)), backbone="resnet50")
    message = str(caught.value)
    assert "resnet50" in message and "mine" in message and str(missing) in message


def test_local_path_accepts_file_folder_checkpoint_prefix_and_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "w.h5").write_bytes(b"x")
    (tmp_path / "saved").mkdir()
    (tmp_path / "model.ckpt.index").write_bytes(b"x")
    for given in ("~/w.h5", str(tmp_path / "saved"), str(tmp_path / "model.ckpt")):
        assert fetch_weights(WeightSource("mine", path=given)) == Path(given).expanduser()


def test_checkpoint_archive_extracts_the_prefix(server):
    members = {
        "model.ckpt.index": b"index",
        "model.ckpt.data-00000-of-00001": b"data",
        "README": b"not wanted",
    }
    archive = tar_gz(members)
    url = server.serve("inception_v4_2016.tar.gz", archive)
    source = WeightSource("imagenet", url=url, sha256=sha256(archive), member="model.ckpt")

    prefix = fetch_weights(source)
    folder = weights_cache_dir() / "inception_v4_2016"
    assert prefix == folder / "model.ckpt"
    assert (folder / "model.ckpt.index").read_bytes() == b"index"
    assert (folder / "model.ckpt.data-00000-of-00001").read_bytes() == b"data"
    assert not (folder / "README").exists()

    (weights_cache_dir() / "inception_v4_2016.tar.gz").unlink()
    server.root.joinpath("inception_v4_2016.tar.gz").unlink()
    assert fetch_weights(source) == prefix  # the extraction is reused, archive or not
    assert len(server.requests) == 1


def test_archive_without_the_member_lists_what_it_holds(server):
    archive = zipped({"weights/other.h5": b"x"})
    url = server.serve("bundle.zip", archive)
    source = WeightSource("imagenet", url=url, sha256=sha256(archive), member="model.h5")
    with pytest.raises(WeightsError, match="model.h5.*weights/other.h5"):
        fetch_weights(source)


@pytest.mark.parametrize("pack", [tar_gz, zipped], ids=["tar.gz", "zip"])
def test_archive_with_path_traversal_is_refused(server, pack):
    archive = pack({"../evil": b"owned", "model.h5": b"weights"})
    suffix = ".zip" if pack is zipped else ".tar.gz"
    url = server.serve(f"bundle{suffix}", archive)
    source = WeightSource("imagenet", url=url, sha256=sha256(archive), member="evil")
    with pytest.raises(WeightsError, match="refusing"):
        fetch_weights(source)
    cache = weights_cache_dir()
    assert not (cache / "evil").exists()
    assert not (cache.parent / "evil").exists()
    assert not any(p.name == "evil" for p in cache.parent.rglob("*"))


def test_file_digest_streams_large_files(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    data = path.read_bytes()
    assert file_digest(path, "sha256") == sha256(data)
    assert file_digest(path, "md5") == md5(data)
