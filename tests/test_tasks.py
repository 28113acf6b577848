"""Tasks beyond classification: regression, multi-label and Galaxy Zoo votes, from the
catalog's checks to a served model answering over TF Serving's Regress, Classify and
Predict APIs."""

from __future__ import annotations

import csv
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from helpers import ZOO_SCRIPT, free_port
from zoo.data.dataset import load_image_set, target_array
from zoo.data.synth import write_synthetic_dataset
from zoo.errors import ConfigError, DataError
from zoo.tasks import task_for
from zoo.tasks.metrics import auroc, multilabel_metrics, regression_metrics, vote_metrics
from zoo.train.config import FinetuneConfig
from zoo.train.evaluate import evaluate_run

# --- catalogs: what is checked, and how it is said --------------------------------------


def write_catalog(folder: Path, header: list[str], rows: list[list[object]]) -> Path:
    """A catalog of tiny PNGs, one per row (a row's path is written as the file's)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(len(rows)):
        Image.fromarray(np.full((8, 8, 3), 40 * index % 255, "uint8")).save(
            folder / f"img{index}.png"
        )
    with open(folder / "catalog.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", *header])
        writer.writerows([f"img{index}.png", *row] for index, row in enumerate(rows))
    return folder / "catalog.csv"


@pytest.mark.parametrize(
    "header, rows, task, targets, message",
    [
        (["a"], [[1.0]], "regress", ("b",), r"catalog.csv: no column 'b' \(the catalog has a\)"),
        (["a"], [[1.0], ["big"]], "regress", ("a",), r"catalog.csv, line 3, column 'a': 'big' is not a number"),
        (["a", "b"], [[1, 2]], "regress", (), r"--task regress needs --targets .* numeric columns: a, b"),
        (["q_x", "q_y"], [[3, -1]], "votes", (), r"line 2, column 'q_y': vote count -1 is negative"),
        (["q_x", "q_y"], [[3, 1], [2.5, 1]], "votes", ("q_x", "q_y"), r"line 3, column 'q_x': vote count 2.5 is not a whole"),
        (["q_x", "r_y"], [[3, 1]], "votes", ("q_x", "r_y"), r"question\(s\) q, r have one answer column"),
        (["s", "t"], [[0, 1], [2, 0]], "multilabel", ("s", "t"), r"line 3, column 's': 2 is not 0 or 1"),
        (["a"], [[1.0]], "votes", (), r"--task votes needs vote-count columns named QUESTION_ANSWER"),
    ],
)  # fmt: skip
def test_bad_catalogs_name_the_file_row_and_column(tmp_path, header, rows, task, targets, message):
    catalog = write_catalog(tmp_path / "data", header, rows)
    with pytest.raises(DataError, match=message):
        load_image_set(catalog, task=task, targets=targets)


def test_rows_without_a_target_are_skipped_counted_and_named(tmp_path):
    rows = [[0.1 * i, i % 3] for i in range(12)]
    rows[4][0] = "NaN"
    rows[7][0] = ""
    catalog = write_catalog(tmp_path / "data", ["z", "n"], rows)
    with pytest.warns(UserWarning, match="skipped 2 file"):
        images = load_image_set(catalog, task="regress", targets=("z", "n"), val_split=0.3)
    assert images.labels == ("z", "n") and images.task == "regress"
    assert sorted(images.skipped) == [
        ("img4.png", "line 6: no value in column 'z'"),
        ("img7.png", "line 9: no value in column 'z'"),
    ]
    assert len(images.samples) == 10
    values = dict(
        zip([s.relpath for s in images.samples], target_array(images.samples), strict=True)
    )
    assert values["img3.png"].tolist() == pytest.approx([0.3, 0.0])
    assert images.summary()["counts"]["train"]["images"] == len(images.split("train"))
    assert images.class_weights() is None


def test_votes_default_to_question_answer_columns_and_mask_what_was_not_asked(tmp_path):
    header = ["q1_yes", "q1_no", "q2_a", "q2_b", "q2_c", "axis_ratio", "flag"]
    rows = [[10 - i, i, 2 + i % 2, "" if i == 1 else 2, 3, 0.5, i % 2] for i in range(9)]
    rows.append([0, 0, "", "", "", 0.5, 0])
    catalog = write_catalog(tmp_path / "data", header, rows)
    with pytest.warns(UserWarning, match="skipped 1 file"):
        images = load_image_set(catalog, task="votes", val_split=0.4)
    assert images.labels == ("q1_yes", "q1_no", "q2_a", "q2_b", "q2_c")
    assert images.skipped == [("img9.png", "line 11: no votes in any question")]
    first = next(s for s in images.samples if s.relpath == "img1.png")
    assert first.target == (9.0, 1.0, 0.0, 0.0, 0.0)  # q2 had a missing count: not asked
    # multi-label picks the 0/1 columns that hold both values
    multilabel = load_image_set(catalog, task="multilabel", val_split=0.4)
    assert multilabel.labels == ("flag",)


def test_settings_of_a_task_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="--targets names catalog columns for --task regress"):
        FinetuneConfig("astro_cnn", str(tmp_path), str(tmp_path / "run"), targets=("a",))
    with pytest.raises(ConfigError, match="--label-smoothing applies to classes"):
        FinetuneConfig(
            "astro_cnn", str(tmp_path), str(tmp_path / "r"), task="votes", label_smoothing=0.1
        )
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match="reads its targets from a CSV catalog"):
        load_image_set(tmp_path, task="regress", targets=("z",))


# --- losses and metrics -----------------------------------------------------------------


def dirichlet_multinomial_nll(counts: np.ndarray, alpha: np.ndarray) -> float:
    """The textbook formula, term by term (Walmsley et al. 2022, eq. 3)."""
    n, a = counts.sum(), alpha.sum()
    log_p = math.lgamma(n + 1) + math.lgamma(a) - math.lgamma(n + a)
    for k, al in zip(counts, alpha, strict=True):
        log_p += math.lgamma(k + al) - math.lgamma(al) - math.lgamma(k + 1)
    return -log_p


def test_dirichlet_multinomial_loss_is_the_likelihood_per_question_masked():
    from zoo.tasks.losses import DirichletMultinomial

    loss = DirichletMultinomial([(0, 2), (2, 5)], reduction=None)
    counts = np.array([[30, 10, 2, 5, 1], [12, 3, 0, 0, 0]], "float32")
    alpha = np.array([[20, 8, 3, 4, 2], [5, 50, 7, 1, 90]], "float32")
    got = np.asarray(loss(counts, alpha))
    want = [
        dirichlet_multinomial_nll(counts[0, :2], alpha[0, :2])
        + dirichlet_multinomial_nll(counts[0, 2:], alpha[0, 2:]),
        dirichlet_multinomial_nll(counts[1, :2], alpha[1, :2]),  # question 2 unasked: no term
    ]
    assert got == pytest.approx(want, rel=1e-5)
    # concentrations in the votes' proportions fit better than the reverse
    one = DirichletMultinomial([(0, 2)], reduction=None)
    assert float(one(counts[:1, :2], [[30.0, 10.0]])[0]) < float(
        one(counts[:1, :2], [[10.0, 30.0]])[0]
    )


def test_scaled_squared_error_weighs_targets_by_their_spread():
    from zoo.tasks.losses import ScaledSquaredError

    loss = ScaledSquaredError([0.1, 1000.0], reduction=None)
    value = np.asarray(loss(np.array([[1.0, 5000.0]]), np.array([[1.1, 6000.0]])))
    assert value == pytest.approx([1.0])  # one standard deviation off on each


def test_regression_metrics_and_redshift_scores():
    truth = np.array([[0.1, 1.0], [0.5, 2.0], [1.0, 3.0], [2.0, 4.0]])
    predicted = truth + np.array([[0.01, 0.5], [-0.02, -0.5], [0.6, 0.5], [0.03, -0.5]])
    m = regression_metrics(truth, predicted, ["photo_z", "sersic_n"])
    n = m.per_target["sersic_n"]
    assert n["rmse"] == pytest.approx(0.5) and n["mae"] == pytest.approx(0.5)
    assert n["r2"] == pytest.approx(1 - 1.0 / 5.0)
    assert "nmad" not in n
    z = m.per_target["photo_z"]
    assert z["outlier_fraction"] == pytest.approx(0.25)  # 0.6 / (1 + 1.0) > 0.15
    scaled = (predicted[:, 0] - truth[:, 0]) / (1 + truth[:, 0])
    assert z["nmad"] == pytest.approx(1.4826 * np.median(np.abs(scaled - np.median(scaled))))
    assert m.per_target["photo_z"]["r2"] is not None
    assert (
        regression_metrics(np.ones((3, 1)), np.ones((3, 1)), ["flat"]).per_target["flat"]["r2"]
        is None
    )


def test_multilabel_thresholds_come_from_validation_and_auroc_is_the_rank_statistic():
    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 0], [0, 1]])
    scores = np.array([[0.9, 0.2], [0.35, 0.1], [0.3, 0.8], [0.1, 0.7], [0.2, 0.9]])
    val = multilabel_metrics(truth, scores, ["bar", "ring"])
    assert val.thresholds == {"bar": 0.35, "ring": 0.8}
    assert val.per_label["bar"]["f1"] == 1.0 and val.macro_f1 == 1.0
    test = multilabel_metrics(truth, scores * 0.5, ["bar", "ring"], val.thresholds)
    assert test.thresholds == val.thresholds and test.per_label["ring"]["recall"] == 0.0
    assert auroc(np.array([True, False]), np.array([0.9, 0.1])) == 1.0
    assert auroc(np.array([True, False]), np.array([0.1, 0.9])) == 0.0
    assert auroc(np.array([True, False, True]), np.array([0.5, 0.5, 0.9])) == 0.75
    assert auroc(np.array([False, False]), np.array([0.5, 0.5])) is None


def test_vote_metrics_noise_floor_is_what_a_perfect_model_scores():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 3000)
    n = rng.integers(10, 60, 3000)
    yes = rng.binomial(n, p)
    counts = np.stack([yes, n - yes], axis=1)
    perfect = vote_metrics(counts, np.stack([p, 1 - p], 1), [("q", ("yes", "no"))])
    assert perfect.mae == pytest.approx(perfect.sampling_noise, rel=0.03)
    assert perfect.per_question["q"]["majority_accuracy"] > 0.8
    blind = vote_metrics(counts, np.full((3000, 2), 0.5), [("q", ("yes", "no"))])
    assert blind.mae > 2 * perfect.mae


# --- end to end: train, evaluate, export, serve ---------------------------------------


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tasks")
    summary = write_synthetic_dataset(
        root / "galaxies", per_class=25, size=64, seed=5, catalog=True
    )
    return summary.catalog


def train(catalog: Path, out: Path, task: str, targets: tuple[str, ...] = ()) -> zoo.Run:
    return zoo.finetune(
        "astro_cnn", catalog, out, task=task, targets=targets, strategy="head", epochs=60,
        progress=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(catalog, tmp_path_factory) -> dict[str, zoo.Run]:
    root = tmp_path_factory.mktemp("task-runs")
    home = root / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOO_HOME", str(home))
        return {
            "regress": train(
                catalog, root / "regress", "regress", ("axis_ratio", "bulge_fraction")
            ),
            "votes": train(catalog, root / "votes", "votes"),
            "multilabel": train(catalog, root / "multilabel", "multilabel"),
        }


@pytest.mark.train
def test_regression_learns_the_drawn_parameters(runs):
    run = runs["regress"]
    assert run.labels == ("axis_ratio", "bulge_fraction")
    assert run.summary["task"] == "regress" and run.config["task"]["name"] == "regress"
    for target in run.labels:
        assert run.metrics["val"]["per_target"][target]["r2"] > 0.6, run.metrics["val"]
    assert (run.path / "predicted_val.png").stat().st_size > 0
    assert (run.path / "labels.txt").read_text() == "axis_ratio\nbulge_fraction\n"
    assert "rmse" in (run.path / "metrics.txt").read_text()


@pytest.mark.train
def test_votes_are_predicted_better_than_the_average_galaxy(runs, catalog):
    run = runs["votes"]
    val = run.metrics["val"]
    assert [q for q in val["per_question"]] == [
        "smooth-or-featured", "disk-edge-on", "has-spiral-arms", "merging",
    ]  # fmt: skip
    # the baseline: every galaxy given the training set's mean vote fractions
    images = load_image_set(catalog, task="votes")
    task = task_for(images)
    train_counts = target_array(images.split("train"))
    mean = task.fractions(train_counts.sum(axis=0, keepdims=True) + 1e-9)
    val_counts = target_array(images.split("val"))
    baseline = vote_metrics(val_counts, np.repeat(mean, len(val_counts), 0), task.questions)
    assert val["mae"] < 0.8 * baseline.mae, (val["mae"], baseline.mae)
    assert 0 < val["sampling_noise"] < val["mae"] + 0.05
    assert (run.path / "predicted_val.png").is_file()


@pytest.mark.train
def test_multilabel_scores_the_test_split_at_the_validation_thresholds(runs):
    run = runs["multilabel"]
    assert run.labels == ("spiral", "dusty", "merger")
    assert run.metrics["test"]["thresholds"] == run.metrics["val"]["thresholds"]
    assert run.metrics["val"]["per_label"]["merger"]["auroc"] > 0.9


@pytest.mark.train
def test_evaluate_scores_a_regression_run_on_a_new_catalog(runs, tmp_path):
    fresh = write_synthetic_dataset(tmp_path / "new", per_class=8, size=64, seed=77, catalog=True)
    metrics, folder = evaluate_run(runs["regress"].path, fresh.catalog, name="fresh")
    assert metrics.count == 32 and metrics.per_target["axis_ratio"]["r2"] > 0.3
    assert (folder / "predicted.png").is_file() and (folder / "metrics.json").is_file()


@pytest.mark.subprocess
def test_each_task_serves_through_tf_servings_apis(runs, catalog, tmp_path):
    """Exports served by `zoo serve` in another process: the Regress, Classify and Predict
    answers are the models' own."""
    from zoo.data.pipeline import image_dataset
    from zoo.export.exporter import _example
    from zoo.serve.client import ServingClient
    from zoo.serve.predict import wait_for_model

    models = tmp_path / "models"
    for name, run in runs.items():  # the clean-process check once, on a Regress signature
        done = zoo.export(run.path, models, name, check=name == "votes")
        assert name != "votes" or done.check.methods["regress"] == "tensorflow/serving/regress"
    port = free_port()
    server = subprocess.Popen(
        [str(ZOO_SCRIPT), "serve", str(models), "--port", str(port), "--rest-port", str(free_port())],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ},
    )  # fmt: skip
    try:
        images = load_image_set(catalog, task="votes")
        samples = images.split("val")[:3]
        blobs = [Path(s.path).read_bytes() for s in samples]
        pixels = np.concatenate(list(image_dataset(samples, runs["votes"].geometry, labels=False)))
        with ServingClient(f"127.0.0.1:{port}") as client:
            for name in runs:
                wait_for_model(client, name, None, 120)
            regression = runs["regress"].model.predict(pixels, verbose=0)
            got = client.regress("regress", [_example(b) for b in blobs])
            assert got == pytest.approx(regression[:, 0].tolist(), abs=1e-4)
            served = client.predict("regress", {"images": blobs})
            assert served["bulge_fraction"] == pytest.approx(regression[:, 1], abs=1e-4)

            concentrations = runs["votes"].model.predict(pixels, verbose=0)
            fractions = concentrations[:, :2] / concentrations[:, :2].sum(1, keepdims=True)
            only = client.predict("votes", {"images": blobs}, output_filter=["smooth-or-featured"])
            assert list(only) == ["smooth-or-featured"]
            assert only["smooth-or-featured"] == pytest.approx(fractions, abs=1e-4)
            smooth = client.regress("votes", [_example(b) for b in blobs])
            assert smooth == pytest.approx(fractions[:, 0].tolist(), abs=1e-4)

            probabilities = runs["multilabel"].model.predict(pixels, verbose=0)
            classes = client.classify("multilabel", [_example(b) for b in blobs])
            assert [label for label, _ in classes[0]] == ["spiral", "dusty", "merger"]
            scores = np.array([[score for _, score in row] for row in classes])
            np.testing.assert_allclose(scores, probabilities, atol=1e-4)
        printed = subprocess.run(
            [str(ZOO_SCRIPT), "predict", samples[0].path, "--model", "regress",
             "--server", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert printed.returncode == 0, printed.stderr
        assert (
            f"axis_ratio {regression[0, 0]:.3f}, bulge_fraction {regression[0, 1]:.3f}"
            in printed.stdout
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
