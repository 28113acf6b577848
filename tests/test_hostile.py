"""A hostile but realistic user, on the real CLI: bad files, bad flags, odd catalogs.

Each test asserts that the data and unrelated files survive, the error (or the skipped
file) names what to fix, and the run, or the refusal, is complete.
"""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.data.dataset import load_image_set
from zoo.data.synth import write_synthetic_dataset
from zoo.errors import DataError, DataWarning

SMALL = "backbones:\n  astro_small: {base: astro_cnn, options: {width: 8}}\n"
CLASSES = ("smooth_round", "edge_on")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height grey pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "small.yaml"
    path.write_text(SMALL)
    return path


def finetune(registry, data, out, *extra):
    return invoke(
        "finetune", "astro_small", data, "--out", out, "--registry", registry,
        "--image-size", "48", "--strategy", "full", "--epochs", "1", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bad_png_run(tmp_path_factory, registry):
    """A PNG set with a file whose name is not UTF-8 and a decompression bomb, trained on."""
    root = tmp_path_factory.mktemp("bad-png")
    data = root / "galaxies"
    write_synthetic_dataset(data, CLASSES, 16, 48, 3, seed=5)
    good = (data / "edge_on" / "edge_on_00000.png").read_bytes()
    with open(os.path.join(os.fsencode(data / "edge_on"), b"caf\xe9.png"), "wb") as handle:
        handle.write(good)
    (data / "smooth_round" / "bomb.png").write_bytes(png_claiming(20000, 20000))
    (data / "smooth_round" / "huge.png").write_bytes(png_claiming(8000, 8000))
    result = finetune(registry, data, root / "run")
    return root, data, result


@pytest.mark.train
def test_unusable_pngs_are_skipped_and_named_and_the_run_completes(bad_png_run):
    root, data, result = bad_png_run
    assert result.exit_code == 0, result.output
    assert "skipped 3 file(s) that could not be used" in result.output
    summary = json.loads((root / "run" / "summary.json").read_text())
    reasons = {s["file"]: s["reason"] for s in summary["data"]["skipped"]}
    assert reasons["edge_on/caf\\xe9.png"] == "its name is not valid UTF-8; rename it"
    assert reasons["smooth_round/huge.png"] == (
        "8000x8000 pixels is more than the limit of 50,000,000 (--max-pixels)"
    )
    assert reasons["smooth_round/bomb.png"].startswith("too large to decode safely")
    assert (data / "smooth_round" / "bomb.png").exists()  # skipped, never touched


@pytest.mark.train
def test_fits_with_too_few_bands_or_no_finite_pixel_are_skipped(tmp_path, registry):
    data = tmp_path / "fits"
    write_synthetic_dataset(data, CLASSES, 12, 48, 3, seed=6, fmt="fits")
    fits.PrimaryHDU(np.ones((2, 48, 48), "float32")).writeto(data / "edge_on" / "two_planes.fits")
    fits.PrimaryHDU(np.full((3, 48, 48), np.nan, "float32")).writeto(data / "edge_on" / "nan.fits")
    result = finetune(registry, data, tmp_path / "run")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    reasons = {s["file"]: s["reason"] for s in summary["data"]["skipped"]}
    assert reasons["edge_on/two_planes.fits"].startswith("has 2 bands where the others have 3")
    assert reasons["edge_on/nan.fits"] == "no pixel holds a finite value (all NaN or infinite)"
    assert summary["data"]["counts"]["train"]["edge_on"] > 0


@pytest.mark.train
def test_evaluate_names_that_would_escape_the_run_are_refused(bad_png_run, tmp_path):
    root, data, _ = bad_png_run
    victim = tmp_path / "x"
    victim.mkdir()
    (victim / "metrics.json").write_text("mine")
    for name in ("../../x", str(victim), "..", "a/b"):
        result = invoke("evaluate", root / "run", data, "--name", name)
        assert result.exit_code == 1 and "must be a plain folder name" in result.output, name
    assert (victim / "metrics.json").read_text() == "mine"
    assert not (root / "run" / "evaluations").exists()


@pytest.mark.train
def test_bad_learning_rates_and_sizes_are_refused_up_front(tmp_path, registry, bad_png_run):
    _, data, _ = bad_png_run
    nan = finetune(registry, data, tmp_path / "nan", "--lr", "nan")
    assert nan.exit_code == 1 and nan.output == "error: --lr must be a positive number, got nan\n"
    diverged = finetune(registry, data, tmp_path / "big", "--lr", "1e30")
    assert diverged.exit_code == 1
    assert "error: the loss became nan in phase 'full'" in diverged.output
    assert "lower --lr" in diverged.output
    huge = invoke(
        "finetune", "resnet50", data, "--out", tmp_path / "huge", "--image-size", "10000",
        "--weights", "none",
    )  # fmt: skip
    assert huge.exit_code == 1
    assert "an input of 10000x10000 pixels needs at least" in huge.output
    assert "lower --image-size or --batch-size" in huge.output and not (tmp_path / "huge").exists()
    too_many = finetune(registry, data, tmp_path / "top", "--strategy", "top", "--unfreeze", "99")
    assert too_many.exit_code == 1
    assert "--unfreeze 99: backbone 'astro_small' has 4 blocks; choose 1 to 4" in too_many.output


def test_a_data_error_leaves_no_run_folder_behind(tmp_path, registry):
    one_class = tmp_path / "one"
    write_synthetic_dataset(one_class, ("merger",), 4, 48, 3, seed=1)
    result = finetune(registry, one_class, tmp_path / "run")
    assert result.exit_code == 1 and "only one class" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "zoo_home"]


@pytest.mark.train
def test_the_same_seed_gives_the_same_run(tmp_path, registry, bad_png_run):
    _, data, _ = bad_png_run
    runs = []
    for name in ("a", "b"):
        result = finetune(registry, data, tmp_path / name, "--epochs", "2", "--seed", "7")
        assert result.exit_code == 0, result.output
        runs.append(zoo.load_run(tmp_path / name))
    first, second = runs
    assert first.metrics == second.metrics and first.config["settings"]["seed"] == 7
    assert first.phases[0].history == second.phases[0].history
    for a, b in zip(first.model.weights, second.model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    from tensorflow.python.framework import config

    assert not config.is_op_determinism_enabled()  # switched on for the runs only


def catalog(folder, rows, encoding="utf-8"):
    path = folder / "catalog.csv"
    path.write_bytes(
        ("path,label\n" + "".join(f"{p},{label}\n" for p, label in rows)).encode(encoding)
    )
    return path


def test_csv_catalogs_dedupe_exclude_conflicts_and_split_by_relative_path(tmp_path):
    data = tmp_path / "set"
    write_synthetic_dataset(data, CLASSES, 10, 48, 3, seed=8)
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    rows = [(f, f.split("/")[0]) for f in files]
    rows.append((files[0], rows[0][1]))  # listed twice, same label
    rows.append((files[1], "edge_on" if rows[1][1] != "edge_on" else "smooth_round"))  # conflict
    rows.append((str(data / files[2]), rows[2][1]))  # absolute path to a listed file
    with pytest.warns(DataWarning, match="2 row\\(s\\) list a file again"):
        images = load_image_set(catalog(data, rows))
    assert len(images.samples) == len(files) - 1
    assert (
        files[1],
        f"listed under more than one label ({', '.join(sorted(CLASSES))}); fix the catalog",
    ) in images.skipped
    by_folder = load_image_set(data)
    same = {s.relpath: s.split for s in by_folder.samples}
    assert all(same[s.relpath] == s.split for s in images.samples)  # split by relative path


def test_a_csv_in_another_encoding_is_refused_with_the_line(tmp_path):
    data = tmp_path / "set"
    write_synthetic_dataset(data, CLASSES, 3, 48, 3, seed=9)
    rows = [
        (p.relative_to(data).as_posix(), "galaxie spirale élargie")
        for p in sorted(data.rglob("*.png"))
    ]
    path = catalog(data, rows, encoding="latin-1")
    with pytest.raises(DataError, match="catalog.csv, line 2: not UTF-8 \\(byte 0xe9\\); save"):
        load_image_set(path)
    result = invoke("finetune", "astro_cnn", path, "--out", tmp_path / "run")
    assert result.exit_code == 1 and "line 2: not UTF-8" in result.output
