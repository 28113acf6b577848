"""Evaluation metrics against hand-computed values, and the PNG plots they feed."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from zoo.train.metrics import classification_metrics, expected_calibration_error
from zoo.train.plots import plot_confusion_matrix, plot_learning_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LABELS = ("cat", "dog", "bird")

# dog (1) occurs twice but is never predicted; bird (2) never occurs but is predicted once.
Y_TRUE = [0, 0, 0, 1, 1]
PROBS = np.array(
    [
        [0.90, 0.05, 0.05],  # cat -> cat, confidence 0.9
        [0.70, 0.20, 0.10],  # cat -> cat, 0.7
        [0.30, 0.10, 0.60],  # cat -> bird, 0.6
        [0.80, 0.15, 0.05],  # dog -> cat, 0.8
        [0.55, 0.30, 0.15],  # dog -> cat, 0.55
    ]
)


def test_metrics_match_hand_computed_values():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(Y_TRUE, PROBS, LABELS, bins=4)

    assert m.labels == LABELS
    assert m.count == 5
    assert m.confusion == [[2, 0, 1], [2, 0, 0], [0, 0, 0]]
    assert m.accuracy == pytest.approx(2 / 5)
    assert m.per_class["cat"] == pytest.approx(
        {"precision": 2 / 4, "recall": 2 / 3, "f1": 4 / 7, "support": 3}
    )
    assert m.per_class["dog"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert m.per_class["bird"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m.macro_f1 == pytest.approx((4 / 7) / 3)
    assert m.top_confidence_mean == pytest.approx(3.55 / 5)
    # bins (0.5, 0.75]: {0.7 right, 0.6 wrong, 0.55 wrong}; (0.75, 1]: {0.9 right, 0.8 wrong}
    assert m.expected_calibration_error == pytest.approx(
        3 / 5 * abs(1 / 3 - 1.85 / 3) + 2 / 5 * abs(1 / 2 - 0.85)
    )
    values = [m.accuracy, m.macro_f1, m.expected_calibration_error, m.top_confidence_mean]
    values += [v for scores in m.per_class.values() for v in scores.values()]
    assert not np.isnan(values).any()


def test_perfect_predictions():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.05, 0.0, 0.95], [0.6, 0.3, 0.1]])
    m = classification_metrics(np.array([0, 1, 2, 0]), probs, LABELS)

    assert m.accuracy == 1.0
    assert m.macro_f1 == 1.0
    assert m.confusion == [[2, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert all(s["precision"] == s["recall"] == s["f1"] == 1.0 for s in m.per_class.values())
    # All correct: every bin's accuracy is 1, so ECE = 1 - mean confidence whatever the bins.
    mean_confidence = (0.9 + 0.8 + 0.95 + 0.6) / 4
    assert m.top_confidence_mean == pytest.approx(mean_confidence)
    assert m.expected_calibration_error == pytest.approx(1 - mean_confidence)


def test_ece_on_a_constructed_example():
    # Four under-confident right answers at 0.75, two over-confident ones at 0.95 (half right).
    probs = np.array([[0.75, 0.25]] * 4 + [[0.05, 0.95]] * 2)
    y_true = [0, 0, 0, 0, 1, 0]

    assert expected_calibration_error(y_true, probs, bins=10) == pytest.approx(
        4 / 6 * 0.25 + 2 / 6 * 0.45
    )
    # One bin nets the two errors against each other: |5/6 - mean confidence|.
    assert expected_calibration_error(y_true, probs, bins=1) == pytest.approx(
        abs(5 / 6 - (4 * 0.75 + 2 * 0.95) / 6)
    )


def test_ece_with_a_bin_per_sample_is_the_mean_gap():
    gaps = [1 - 0.9, 1 - 0.7, 0.6, 0.8, 0.55]
    assert expected_calibration_error(Y_TRUE, PROBS, bins=100) == pytest.approx(np.mean(gaps))


def test_ece_includes_confidence_zero_and_one():
    assert expected_calibration_error([0], [[1.0, 0.0]]) == 0.0
    assert expected_calibration_error([1], [[1.0, 0.0]]) == 1.0
    assert expected_calibration_error([0, 1], [[0.0, 0.0], [0.0, 0.0]]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("y_true", "probs", "labels", "message"),
    [
        ([0, 1], np.array([0.5, 0.5]), LABELS, "shape"),
        ([0, 1], np.full((2, 2), 0.5), LABELS, "one column per label"),
        ([0, 1, 2], np.full((2, 3), 0.3), LABELS, "3 samples but probabilities has 2 rows"),
        ([], np.zeros((0, 3)), LABELS, "empty"),
        ([0, 3], np.full((2, 3), 0.3), LABELS, "class index 3"),
        ([0, -1], np.full((2, 3), 0.3), LABELS, "class index -1"),
        ([0.0, 1.0], np.full((2, 3), 0.3), LABELS, "integer"),
        ([[0, 1]], np.full((2, 3), 0.3), LABELS, "1-D"),
        ([0, 1], np.array([[0.3, np.nan, 0.3]] * 2), LABELS, "finite"),
        ([0, 1], np.array([[2.0, -1.0, 0.5]] * 2), LABELS, "logits"),
        ([0, 1], np.full((2, 3), 0.3), (), "labels is empty"),
        ([0, 1], np.full((2, 3), 0.3), ("a", "b", "a"), "repeated: a"),
    ],
)
def test_invalid_inputs_are_rejected(y_true, probs, labels, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, probs, labels)


@pytest.mark.parametrize("bins", [0, -3, 2.5, True])
def test_invalid_bins_are_rejected(bins):
    with pytest.raises(ValueError, match="bins"):
        expected_calibration_error(Y_TRUE, PROBS, bins=bins)


def test_ece_rejects_one_dimensional_probabilities():
    with pytest.raises(ValueError, match="2-D"):
        expected_calibration_error([0, 1], [0.5, 0.5])


def test_to_dict_is_json_serialisable():
    m = classification_metrics(np.array(Y_TRUE, dtype=np.int32), PROBS.astype(np.float32), LABELS)
    data = json.loads(json.dumps(m.to_dict()))

    assert data["labels"] == list(LABELS)
    assert data["confusion"] == [[2, 0, 1], [2, 0, 0], [0, 0, 0]]
    assert data["per_class"]["dog"]["support"] == 2
    assert data["accuracy"] == pytest.approx(0.4)


def test_lines_report_headline_numbers_and_every_label():
    text = "\n".join(classification_metrics(Y_TRUE, PROBS, LABELS).lines())

    assert "accuracy: 0.4000 (2/5)" in text
    assert "macro F1" in text
    assert "calibration error" in text
    for label in LABELS:
        assert label in text


def _assert_png(path, min_width=100):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5000
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > min_width and image.height > 100
        return image.size


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def out(tmp_path):
    """A folder of its own: tmp_path also holds the autouse ZOO_HOME."""
    folder = tmp_path / "plots"
    folder.mkdir()
    return folder


HISTORY = {
    "loss": [1.2, 0.8, 0.6, 0.5, 0.45, 0.4],
    "val_loss": [1.3, 0.9, 0.75, 0.7, 0.66, 0.65],
    "accuracy": [0.5, 0.7, 0.8, 0.85, 0.88, 0.9],
    "val_accuracy": [0.45, 0.65, 0.72, 0.75, 0.78, 0.79],
}


def test_learning_curves_with_validation_and_phases(out):
    written = plot_learning_curves(
        HISTORY, out / "curves.png", phases=[("head", 1), ("fine-tune", 4)]
    )

    assert written == out / "curves.png"
    _assert_png(written)
    assert _names(out) == ["curves.png"]


def test_learning_curves_without_validation_or_accuracy(out):
    train_only = {"loss": HISTORY["loss"], "accuracy": HISTORY["accuracy"]}
    both_size = _assert_png(plot_learning_curves(train_only, str(out / "both.png")))
    loss_size = _assert_png(plot_learning_curves({"loss": [0.9]}, out / "loss.png"))
    val_only = {"val_loss": np.array(HISTORY["val_loss"])}
    _assert_png(plot_learning_curves(val_only, out / "val.png"))

    assert loss_size[0] < both_size[0]  # one panel instead of two
    assert _names(out) == ["both.png", "loss.png", "val.png"]


def test_learning_curves_replace_an_existing_file(out):
    path = out / "runs" / "curves.png"
    path.parent.mkdir()
    path.write_bytes(b"stale")

    plot_learning_curves(HISTORY, path)

    _assert_png(path)


def test_learning_curves_need_something_to_plot(out):
    with pytest.raises(ValueError, match="no loss or accuracy"):
        plot_learning_curves({"lr": [0.1], "loss": []}, out / "x.png")
    assert _names(out) == []


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_png(out, normalize):
    m = classification_metrics(Y_TRUE, PROBS, LABELS)  # includes an all-zero row (bird)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = plot_confusion_matrix(m.confusion, m.labels, out / "cm.png", normalize)

    assert written == out / "cm.png"
    _assert_png(written)
    assert _names(out) == ["cm.png"]


def test_confusion_matrix_must_match_labels(out):
    with pytest.raises(ValueError, match="3 x 3"):
        plot_confusion_matrix([[1, 0], [0, 1]], LABELS, out / "cm.png")
