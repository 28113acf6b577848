"""Image sets: readers, class folders and CSV catalogs, stable splits, skipped files, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from zoo.data.dataset import load_image_set, stable_split
from zoo.data.images import ImageGeometry, channels_fit, read_image
from zoo.data.pipeline import image_dataset
from zoo.errors import DataError, DataWarning, ImageError


def write_png(path, value=128, size=8, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size) if mode == "L" else (size, size, len(mode))
    Image.fromarray(np.full(shape, value, dtype="uint8"), mode=mode).save(path)
    return path


def class_tree(root, per_class=12, classes=("a", "b")):
    for index, label in enumerate(classes):
        for i in range(per_class):
            write_png(root / label / f"{label}{i:02d}.png", value=40 * (index + 1) + i)
    return root


def test_readers_keep_values_and_select_bands(tmp_path):
    grey = read_image(write_png(tmp_path / "g.png", 77))
    assert grey.shape == (8, 8, 1) and grey.dtype == np.float32 and grey.max() == 77
    rgba = Image.fromarray(np.full((4, 4, 4), 9, "uint8"), mode="RGBA")
    rgba.save(tmp_path / "c.png")
    assert read_image(tmp_path / "c.png").shape == (4, 4, 3)  # alpha is not a band

    cube = np.stack([np.full((6, 6), v, "float32") for v in (1.5, 2.5, np.nan)])
    fits.PrimaryHDU(cube).writeto(tmp_path / "cube.fits")
    image = read_image(tmp_path / "cube.fits")
    assert image.shape == (6, 6, 3) and image[0, 0, 2] == 0.0  # NaN blanked
    assert read_image(tmp_path / "cube.fits", bands=["2", 0])[0, 0].tolist() == [0.0, 1.5]

    hdus = fits.HDUList(
        [fits.PrimaryHDU()]
        + [
            fits.ImageHDU(np.full((5, 5), v, "float32"), name=band)
            for v, band in ((1, "G"), (2, "R"), (3, "I"))
        ]
    )
    hdus.writeto(tmp_path / "mef.fits")
    assert read_image(tmp_path / "mef.fits", bands=["i", "g"])[0, 0].tolist() == [3.0, 1.0]
    with pytest.raises(ImageError, match="no band named 'z' \\(bands: G, R, I\\)"):
        read_image(tmp_path / "mef.fits", bands=["z"])
    with pytest.raises(ImageError, match="no band 5; it has 3"):
        read_image(tmp_path / "cube.fits", bands=[5])


def test_conform_fits_channels_then_size():
    import tensorflow as tf

    from zoo.data.conform import conform

    grey = np.ones((2, 2, 1), "float32")
    colour = np.stack([np.zeros((4, 4)), np.ones((4, 4)), np.full((4, 4), 2.0)], axis=-1)
    assert tuple(conform(grey, ImageGeometry((2, 2), 3)).shape) == (2, 2, 3)
    np.testing.assert_allclose(
        conform(colour, ImageGeometry((2, 2), 1)), np.ones((2, 2, 1)), rtol=1e-6
    )
    assert [channels_fit(have, 3) for have in (1, 2, 3, 4)] == [True, False, True, False]
    with pytest.raises(tf.errors.InvalidArgumentError, match="cannot be fitted to 3"):
        conform(np.ones((2, 2, 2), "float32"), ImageGeometry((2, 2), 3))


def test_splits_are_stable_and_follow_the_fractions():
    paths = [f"class/{i:05d}.png" for i in range(4000)]
    splits = [stable_split(p, 0.15, 0.15) for p in paths]
    assert splits == [stable_split(p, 0.15, 0.15) for p in paths]
    assert abs(splits.count("test") / 4000 - 0.15) < 0.02
    assert abs(splits.count("val") / 4000 - 0.15) < 0.02
    # golden values: the split of a path is the same on every machine and Python version
    expected = {13: "val", 15: "test", 19: "val", 21: "test", 28: "val", 0: "train", 1: "train"}
    for index, split in expected.items():
        assert stable_split(f"spiral/galaxy_{index:05d}.png", 0.15, 0.15) == split
    assert stable_split("a\\b.png".replace("\\", "/"), 0.2, 0.2) == stable_split(
        "a/b.png", 0.2, 0.2
    )


def test_folder_set_counts_weights_and_split_digests(tmp_path):
    root = class_tree(tmp_path / "data", per_class=20)
    for i in range(20, 60):
        write_png(root / "b" / f"b{i:02d}.png", value=i)
    images = load_image_set(root, val_split=0.2, test_split=0.2)
    assert images.labels == ("a", "b")
    counts = images.counts()
    assert sum(sum(c.values()) for c in counts.values()) == 80
    weights = images.class_weights()
    assert weights[0] > 1 > weights[1]  # the rare class weighs more
    moved = shutil.copytree(root, tmp_path / "elsewhere")
    again = load_image_set(moved, val_split=0.2, test_split=0.2)
    assert [s.split for s in again.samples] == [s.split for s in images.samples]
    assert again.split_digest("train") == images.split_digest("train")


def test_corrupt_and_foreign_files_are_skipped_counted_and_named(tmp_path):
    root = class_tree(tmp_path / "data")
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "b" / "notes.txt").write_text("observing log")
    (root / "b" / "bad.fits").write_bytes(b"SIMPLE  = T" + b" " * 100)
    (root / "a" / ".DS_Store").write_bytes(b"\0")
    with pytest.warns(DataWarning, match="skipped 3 file"):
        images = load_image_set(root)
    reasons = dict(images.skipped)
    assert set(reasons) == {"a/broken.png", "b/notes.txt", "b/bad.fits"}
    assert "unreadable image" in reasons["a/broken.png"]
    assert "not an image file" in reasons["b/notes.txt"]
    assert len(images.samples) == 24
    assert images.summary()["skipped"][0]["file"] in reasons


def test_csv_catalog_with_and_without_split_column(tmp_path):
    root = class_tree(tmp_path / "data")
    rows = ["path,label,split"] + [
        f"{label}/{label}{i:02d}.png,{label},{'val' if i < 3 else 'train'}"
        for label in "ab"
        for i in range(12)
    ]
    rows.append("a/missing.png,a,train")
    (root / "catalog.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(DataWarning, match="skipped 1"):
        images = load_image_set(root / "catalog.csv")
    assert len(images.split("val")) == 6 and not images.split("test")
    assert ("a/missing.png", "listed in the catalog but missing") in images.skipped

    (root / "plain.csv").write_text(
        "path,label\n"
        + "\n".join(f"{label}/{label}{i:02d}.png,{label}" for label in "ab" for i in range(12))
        + "\n"
    )
    plain = load_image_set(root / "plain.csv", val_split=0.3, test_split=0.1)
    assert {s.split for s in plain.samples} <= {"train", "val", "test"}
    assert [s.split for s in plain.samples] == [
        stable_split(s.relpath, 0.3, 0.1) for s in plain.samples
    ]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda root: class_tree(root, classes=("only",)), "only one class"),
        (
            lambda root: (class_tree(root), (root / "empty").mkdir()),
            "class folder 'empty' holds no images",
        ),
        (lambda root: root.mkdir(), "no images found"),
        (
            lambda root: class_tree(root, per_class=1),
            "validation split is empty|no training images",
        ),
    ],
)
def test_unusable_sets_are_clear_errors(tmp_path, build, message):
    root = tmp_path / "data"
    build(root)
    with pytest.raises(DataError, match=message):
        load_image_set(root)


def test_class_with_only_corrupt_files_is_an_error(tmp_path):
    root = class_tree(tmp_path / "data", classes=("a",))
    (root / "b").mkdir()
    (root / "b" / "x.png").write_bytes(b"junk")
    with (
        pytest.warns(DataWarning),
        pytest.raises(DataError, match="no readable images in class\\(es\\) b"),
    ):
        load_image_set(root)


def test_bad_csv_is_a_clear_error(tmp_path):
    (tmp_path / "c.csv").write_text("file,class\nx.png,a\n")
    with pytest.raises(DataError, match="needs a header with 'path' and 'label'"):
        load_image_set(tmp_path / "c.csv")
    (tmp_path / "d.csv").write_text("path,label,split\nx.png,a,holdout\n")
    with pytest.raises(DataError, match="line 2: split 'holdout'"):
        load_image_set(tmp_path / "d.csv")


def test_pipeline_resizes_fits_channels_and_batches(tmp_path):
    root = class_tree(tmp_path / "data")
    images = load_image_set(root)
    batches = list(
        image_dataset(
            images.samples,
            ImageGeometry((16, 16), 3),
            batch_size=5,
            shuffle=True,
            augment=True,
            seed=1,
        )
    )
    shapes = {tuple(b[0].shape[1:]) for b in batches}
    assert shapes == {(16, 16, 3)}
    assert sum(len(b[1]) for b in batches) == len(images.samples)
    values = np.concatenate([b[0].numpy().reshape(len(b[0]), -1).mean(1) for b in batches])
    assert values.min() >= 40 and values.max() <= 100  # raw pixel values, no preprocessing here
