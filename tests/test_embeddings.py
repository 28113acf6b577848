"""zoo embed and zoo similar: every image's features with its path, cached, and searched."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.data.synth import write_synthetic_dataset
from zoo.embeddings import embed, nearest, outliers, read_embeddings

CLASSES = ("smooth_round", "edge_on", "merger")


@pytest.fixture
def images(tmp_path):
    """Three class folders, an image straight in the folder, a broken file and a note."""
    data = tmp_path / "images"
    write_synthetic_dataset(data, CLASSES, 4, 32, 3, seed=5)
    shutil.copy(data / "merger" / "merger_00000.png", data / "loose.png")
    (data / "edge_on" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (data / "notes.txt").write_text("not an image")
    return data


def run_zoo(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_every_readable_image_is_written_with_its_path_label_and_features(images, tmp_path):
    first, counts = embed("astro_cnn", images, tmp_path / "e.parquet")  # its shipped weights
    assert counts == {"images": 13, "cached": 0, "computed": 13, "skipped": 2}
    stored = read_embeddings(tmp_path / "e.parquet")
    assert (
        stored.vectors.shape == (13, first.vectors.shape[1]) and stored.vectors.dtype == np.float32
    )
    assert np.array_equal(stored.vectors, first.vectors)
    assert sorted(set(stored.labels)) == ["", *sorted(CLASSES)]
    assert stored.labels[stored.row_of("loose.png")] == ""
    assert all(path.startswith(str(images.resolve())) for path in stored.paths)
    assert {s["file"] for s in stored.recipe["skipped"]} == {"edge_on/broken.png", "notes.txt"}
    assert stored.recipe["backbone"] == "astro_cnn" and stored.recipe["weights"] == "simulated"

    # the same images again, to .npy + .csv + .json: every feature from the cache
    again, counts = embed("astro_cnn", images, tmp_path / "e.npy")
    assert counts["cached"] == 13 and counts["computed"] == 0
    npy = read_embeddings(tmp_path / "e.npy")
    assert npy.paths == stored.paths and np.array_equal(npy.vectors, stored.vectors)
    assert (tmp_path / "e.csv").read_text().startswith("row,path,label\n")


def test_zoo_similar_lists_neighbours_of_a_stored_or_a_new_image_and_outliers(images, tmp_path):
    out = tmp_path / "e.npy"
    said = run_zoo("embed", "astro_cnn", str(images), "--out", str(out))
    assert "embedded 13 images (0 from the cache)" in said
    assert "skipped edge_on/broken.png" in said

    # loose.png is a copy of merger_00000.png: each is the other's nearest neighbour
    lines = run_zoo("similar", str(out), "loose.png", "-k", "3").splitlines()
    assert len(lines) == 3
    rank, similarity, label, path = lines[0].split("\t")
    assert (rank, label) == ("1", "merger") and path.endswith("merger/merger_00000.png")
    assert float(similarity) == pytest.approx(1.0, abs=1e-5)
    assert not any(line.endswith("/loose.png") for line in lines)  # never itself

    # a file that is not in the embeddings is embedded as they were
    new = tmp_path / "query.png"
    shutil.copy(images / "edge_on" / "edge_on_00002.png", new)
    first = run_zoo("similar", str(out), str(new), "-k", "1").split("\t")
    assert first[3].strip().endswith("edge_on/edge_on_00002.png")
    assert float(first[1]) == pytest.approx(1.0, abs=1e-4)

    listed = run_zoo("similar", str(out), "--outliers", "2").splitlines()
    assert [line.split("\t")[0] for line in listed] == ["1", "2"]


@pytest.mark.train
def test_a_runs_fine_tuned_backbone_embeds(shared_run, tmp_path):
    out = tmp_path / "run.npy"
    embeddings, counts = embed(str(shared_run.run.path), shared_run.data, out)
    features = shared_run.run.model.get_layer("head").inputs[0].shape[-1]
    assert embeddings.vectors.shape[1] == features
    assert embeddings.recipe["run"] == str(shared_run.run.path.resolve())
    assert counts["images"] == len(embeddings.paths) > 36


def test_bad_requests_get_one_line_errors(images, tmp_path):
    runner = CliRunner()
    bad_suffix = runner.invoke(
        cli, ["embed", "astro_cnn", str(images), "--out", str(tmp_path / "e.txt")]
    )
    assert bad_suffix.exit_code != 0 and "name it .parquet or .npy" in bad_suffix.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(
        cli, ["embed", "astro_cnn", str(tmp_path / "empty"), "--out", str(tmp_path / "e.npy")]
    )
    assert empty.exit_code != 0 and "no images found" in empty.output
    (tmp_path / "v.npy").write_bytes(b"")
    lonely = runner.invoke(cli, ["similar", str(tmp_path / "v.npy"), "x.png"])
    assert lonely.exit_code != 0 and "v.csv is missing beside it" in lonely.output


def test_cosine_search_and_outliers_on_known_vectors():
    rng = np.random.default_rng(0)
    centres = np.eye(4) * 10
    vectors = np.concatenate([c + rng.normal(0, 0.5, (20, 4)) for c in centres])
    vectors = np.concatenate([vectors, [[5.0, 5.0, 5.0, 5.0]]])  # between every cluster
    found = nearest(vectors, vectors[3], 5, exclude=3)
    assert [row // 20 for row, _ in found] == [0] * 5 and 3 not in [row for row, _ in found]
    assert all(a >= b for (_, a), (_, b) in zip(found, found[1:], strict=False))
    assert outliers(vectors, 1, k=5)[0][0] == 80
    assert nearest(vectors * 7, vectors[0], 1)[0] == (0, pytest.approx(1.0))  # scale-free
