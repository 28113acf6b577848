"""The synthetic galaxy generator: reproducible files, the layout the loaders expect, and
classes that differ in morphology rather than in simple pixel statistics."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner
from PIL import Image

import zoo.fs
from zoo.cli import cli
from zoo.data import synth
from zoo.data.synth import SynthSummary, render_galaxy, write_synthetic_dataset
from zoo.data.synth_config import CLASSES, DEFAULT_CLASSES
from zoo.errors import ConfigError, ZooError


def file_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root by relative path, to compare whole datasets."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def best_threshold_accuracy(a: np.ndarray, b: np.ndarray) -> float:
    """The accuracy of the best single threshold on one statistic, either way round."""
    values = np.concatenate([a, b])
    labels = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    ordered = labels[np.argsort(values, kind="stable")]
    ones_below = np.concatenate([[0], np.cumsum(ordered)])
    zeros_below = np.arange(len(ordered) + 1) - ones_below
    correct = zeros_below + (ordered.sum() - ones_below)
    return float(max(correct.max(), (len(ordered) - correct).max()) / len(ordered))


def ellipticity(image: np.ndarray) -> float:
    """1 - b/a from the second moments of the pixels brighter than a fifth of the peak."""
    light = image.sum(axis=-1)
    weights = np.where(light > 0.2 * light.max(), light, 0.0)
    y, x = np.indices(light.shape)
    total = weights.sum()
    cx, cy = (weights * x).sum() / total, (weights * y).sum() / total
    xx = (weights * (x - cx) ** 2).sum() / total
    yy = (weights * (y - cy) ** 2).sum() / total
    xy = (weights * (x - cx) * (y - cy)).sum() / total
    spread = np.sqrt((xx - yy) ** 2 + 4 * xy**2)
    major, minor = xx + yy + spread, xx + yy - spread
    return float(1 - np.sqrt(max(minor, 0.0) / major))


def red_to_blue(image: np.ndarray, mask: np.ndarray) -> float:
    """The flux ratio of band 0 (reddest) to band 2 (bluest) inside a mask."""
    return float(image[mask][:, 0].sum() / image[mask][:, 2].sum())


def test_classes_cover_the_documented_set():
    expected = {
        "smooth_round",
        "smooth_cigar",
        "edge_on",
        "barred_spiral",
        "tight_spiral",
        "loose_spiral",
        "merger",
    }
    assert expected <= set(CLASSES)
    assert set(DEFAULT_CLASSES) <= set(CLASSES)
    assert all(isinstance(text, str) and text and "\n" not in text for text in CLASSES.values())


def test_sersic_b_halves_the_light():
    """Exact values from solving P(2n, b_n) = 1/2 for the regularised incomplete gamma."""
    assert synth.sersic_b(1.0) == pytest.approx(1.678347, abs=1e-4)
    assert synth.sersic_b(4.0) == pytest.approx(7.669249, abs=1e-5)


@pytest.mark.parametrize("fmt", ["png", "fits"])
def test_same_seed_gives_identical_files_and_another_seed_different_ones(tmp_path, fmt):
    kwargs = dict(classes=("edge_on", "merger"), per_class=3, size=32, fmt=fmt)
    write_synthetic_dataset(tmp_path / "a", seed=7, **kwargs)
    write_synthetic_dataset(tmp_path / "b", seed=7, **kwargs)
    write_synthetic_dataset(tmp_path / "c", seed=8, **kwargs)
    a, b, c = (file_bytes(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a)


def test_adding_classes_or_images_leaves_the_others_unchanged(tmp_path):
    write_synthetic_dataset(tmp_path / "one", classes=("loose_spiral",), per_class=2, size=32)
    write_synthetic_dataset(
        tmp_path / "two", classes=("merger", "loose_spiral"), per_class=3, size=32
    )
    one, two = file_bytes(tmp_path / "one"), file_bytes(tmp_path / "two")
    assert all(two[name] == data for name, data in one.items())


def test_images_within_a_class_differ():
    images = [
        render_galaxy("smooth_round", synth._image_rng(0, "smooth_round", i)) for i in range(3)
    ]
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[1], images[2])


@pytest.mark.parametrize("fmt", ["png", "fits"])
def test_layout_and_summary(tmp_path, fmt):
    classes = ("smooth_round", "edge_on", "merger")
    summary = write_synthetic_dataset(
        tmp_path / "out", classes, per_class=4, size=24, seed=3, fmt=fmt
    )
    assert summary == SynthSummary(tmp_path / "out", classes, 4, 24, 3, 3, fmt, 12)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(classes)
    for kind in classes:
        names = sorted(p.name for p in (tmp_path / "out" / kind).iterdir())
        assert names == [f"{kind}_{i:05d}.{fmt}" for i in range(4)]


def test_defaults_write_the_default_classes(tmp_path):
    summary = write_synthetic_dataset(str(tmp_path / "out"), per_class=1, size=16)
    assert summary.classes == DEFAULT_CLASSES
    assert summary.out == tmp_path / "out"
    assert summary.files == len(DEFAULT_CLASSES)
    assert all(
        (tmp_path / "out" / kind / f"{kind}_00000.png").is_file() for kind in DEFAULT_CLASSES
    )


def test_fits_holds_a_float32_band_cube_with_header(tmp_path):
    write_synthetic_dataset(
        tmp_path, ("tight_spiral",), per_class=1, size=40, bands=4, seed=11, fmt="fits"
    )
    with fits.open(tmp_path / "tight_spiral" / "tight_spiral_00000.fits") as hdul:
        assert len(hdul) == 1
        data, header = hdul[0].data, hdul[0].header
        assert data.shape == (4, 40, 40)
        assert data.dtype.kind == "f" and data.dtype.itemsize == 4
        assert header["OBJECT"] == "tight_spiral"
        assert header["BANDS"] == 4
        assert header["ZOOSEED"] == 11
        expected = render_galaxy("tight_spiral", synth._image_rng(11, "tight_spiral", 0), 40, 4)
        np.testing.assert_array_equal(data[2], expected[..., 2])


@pytest.mark.parametrize(("bands", "mode"), [(1, "L"), (3, "RGB")])
def test_png_mode_follows_the_bands(tmp_path, bands, mode):
    write_synthetic_dataset(tmp_path, ("merger",), per_class=1, size=48, bands=bands)
    with Image.open(tmp_path / "merger" / "merger_00000.png") as image:
        assert image.mode == mode
        assert image.size == (48, 48)
        pixels = np.asarray(image)
    assert 0 < pixels.mean() < 255
    assert pixels.max() > 100


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_every_class_renders_for_every_band_count(kind):
    for bands in range(1, 6):
        for index in range(3):
            image = render_galaxy(kind, synth._image_rng(0, kind, index), size=32, bands=bands)
            assert image.shape == (32, 32, bands)
            assert image.dtype == np.float32
            assert np.isfinite(image).all()
            assert image.mean() > 0


def test_odd_and_extreme_sizes_render():
    for size in (16, 17, 511):
        image = render_galaxy("barred_spiral", np.random.default_rng(0), size=size, bands=1)
        assert image.shape == (size, size, 1)
        assert np.isfinite(image).all()


def test_bulges_are_redder_than_arms():
    """Band 0 is the reddest: a spiral's centre is redder than its outskirts."""
    ratios = []
    for index in range(20):
        image = render_galaxy("loose_spiral", synth._image_rng(0, "loose_spiral", index), 64, 3)
        light = image.sum(axis=-1)
        y, x = np.unravel_index(np.argmax(light), light.shape)
        radius = np.hypot(*np.indices(light.shape) - np.array([y, x])[:, None, None])
        core, ring = radius <= 2, (radius > 5) & (radius < 14)
        ratios.append(red_to_blue(image, core) / red_to_blue(image, ring))
    assert np.median(ratios) > 1.1


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(classes=("egde_on",)), ["'egde_on'", "did you mean 'edge_on'", "smooth_round"]),
        (dict(classes=("spaceship",)), ["'spaceship'", "merger"]),
        (dict(classes=()), ["no galaxy classes", "smooth_round"]),
        (dict(per_class=0), ["per_class", "0", ">= 1"]),
        (dict(size=8), ["size", "8", "16..512"]),
        (dict(size=1024), ["size", "1024", "16..512"]),
        (dict(size=64.5), ["size", "64.5", "16..512"]),
        (dict(bands=0), ["bands", "0", "1..5"]),
        (dict(bands=6), ["bands", "6", "1..5"]),
        (dict(fmt="jpeg"), ["'jpeg'", "png", "fits"]),
        (dict(bands=4), ["png", "4", "fits"]),
        (dict(bands=2, fmt="png"), ["png", "2", "fits"]),
        (dict(seed=-1), ["seed", "-1"]),
    ],
)
def test_bad_arguments_raise_spec_errors_naming_the_value(tmp_path, kwargs, words):
    with pytest.raises(ConfigError) as raised:
        write_synthetic_dataset(tmp_path / "out", **kwargs)
    assert isinstance(raised.value, ZooError)
    for word in words:
        assert word in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_render_galaxy_checks_its_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="did you mean 'loose_spiral'"):
        render_galaxy("loose_spirl", rng)
    with pytest.raises(ConfigError, match="size 600"):
        render_galaxy("merger", rng, size=600)
    with pytest.raises(ConfigError, match="bands 9"):
        render_galaxy("merger", rng, bands=9)


def test_an_interrupted_write_leaves_no_partial_files(tmp_path, monkeypatch):
    def fail(src, dst):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(zoo.fs.os, "replace", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_synthetic_dataset(tmp_path, ("edge_on",), per_class=2, size=16)
    monkeypatch.undo()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    write_synthetic_dataset(tmp_path, ("edge_on",), per_class=2, size=16)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "edge_on_00000.png",
        "edge_on_00001.png",
    ]


def test_simple_statistics_do_not_give_the_label_away_but_shape_does():
    """smooth_round vs edge_on: flux, peak and spread overlap; the ellipticity does not."""
    stats = {}
    for kind in ("smooth_round", "edge_on"):
        images = [render_galaxy(kind, synth._image_rng(5, kind, i), 64, 3) for i in range(200)]
        stats[kind] = {
            "total flux": np.array([im.sum() for im in images]),
            "peak": np.array([im.sum(axis=-1).max() for im in images]),
            "std": np.array([im.std() for im in images]),
            "ellipticity": np.array([ellipticity(im) for im in images]),
        }
    accuracy = {
        name: best_threshold_accuracy(stats["smooth_round"][name], stats["edge_on"][name])
        for name in stats["edge_on"]
    }
    for name in ("total flux", "peak", "std"):
        assert accuracy[name] < 0.75, accuracy
    assert accuracy["ellipticity"] > 0.9, accuracy


def test_importing_the_generator_does_not_load_tensorflow():
    code = "import sys, zoo.data.synth; print('tensorflow' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_catalog_holds_parameters_and_votes_that_walk_the_tree(tmp_path):
    from zoo.data.dataset import load_image_set
    from zoo.data.synth_catalog import vote_columns

    classes = ("smooth_round", "edge_on", "loose_spiral", "merger")
    summary = write_synthetic_dataset(tmp_path / "with", classes, 30, 32, 3, seed=4, catalog=True)
    write_synthetic_dataset(tmp_path / "without", classes, 30, 32, 3, seed=4)
    assert summary.catalog == tmp_path / "with" / "catalog.csv"
    files = file_bytes(tmp_path / "with")
    assert files.pop("catalog.csv") and files == file_bytes(tmp_path / "without")

    rows = list(csv.DictReader(summary.catalog.open()))
    assert len(rows) == 120 and {r["path"] for r in rows} == set(files)
    for row in rows:
        assert all(float(row[name]) >= 0 for name in (*synth.PARAMETERS, "flux", "snr"))
        votes = {column: int(row[column]) for column in vote_columns()}
        total = votes["smooth-or-featured_smooth"] + votes["smooth-or-featured_featured"]
        assert 30 <= total <= 50
        assert (
            votes["disk-edge-on_yes"] + votes["disk-edge-on_no"]
            == votes["smooth-or-featured_featured"]
        )
        assert (
            votes["has-spiral-arms_yes"] + votes["has-spiral-arms_no"] == votes["disk-edge-on_no"]
        )
        assert votes["merging_merger"] + votes["merging_none"] == total

    def mean_fraction(kind, answer, of):
        chosen = [r for r in rows if r["label"] == kind and sum(int(r[c]) for c in of)]
        return np.mean([int(r[answer]) / sum(int(r[c]) for c in of) for r in chosen])

    first = ("smooth-or-featured_smooth", "smooth-or-featured_featured")
    assert mean_fraction("smooth_round", first[0], first) > 0.7
    assert mean_fraction("loose_spiral", first[0], first) < 0.3
    assert (
        mean_fraction("edge_on", "disk-edge-on_yes", ("disk-edge-on_yes", "disk-edge-on_no")) > 0.7
    )
    arms = ("has-spiral-arms_yes", "has-spiral-arms_no")
    assert mean_fraction("loose_spiral", arms[0], arms) > 0.7
    assert mean_fraction("merger", "merging_merger", ("merging_merger", "merging_none")) > 0.6

    # the catalog is also a catalog zoo finetune reads
    images = load_image_set(summary.catalog)
    assert images.labels == tuple(sorted(classes)) and len(images.samples) == 120


def test_zoo_data_synth_catalog_flag(tmp_path):
    result = CliRunner().invoke(
        cli, ["data", "synth", str(tmp_path / "g"), "--per-class", "2", "--size", "32", "--catalog"]
    )
    assert result.exit_code == 0, result.output
    assert f"volunteer votes to {tmp_path / 'g' / 'catalog.csv'}" in result.output
    assert len((tmp_path / "g" / "catalog.csv").read_text().splitlines()) == 9
