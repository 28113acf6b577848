"""Fine-tuning end to end on synthetic galaxies, on the CPU.

A small astro_cnn (``width: 8``, from a test registry file) is first trained from scratch
on auxiliary classes (the ``full`` strategy); its backbone weights then serve as the
pretrained weights of the other runs, as a colleague's network would.
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import zoo
from helpers import SMALL_REGISTRY
from zoo.cli import cli
from zoo.data.dataset import load_image_set
from zoo.data.images import ImageGeometry
from zoo.data.synth import write_synthetic_dataset
from zoo.errors import ConfigError, DataWarning, RunDirError, TrainingInterrupted
from zoo.train.evaluate import predict

AUX = ("smooth_round", "barred_spiral", "merger", "tight_spiral")
TARGET = ("smooth_cigar", "edge_on", "loose_spiral")

pytestmark = pytest.mark.train


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOO_HOME", str(root / "home"))
        registry = root / "small.yaml"
        registry.write_text(SMALL_REGISTRY)
        write_synthetic_dataset(root / "aux", AUX, 80, 48, 3, seed=10)
        write_synthetic_dataset(root / "galaxies", TARGET, 24, 48, 3, seed=11)
        pretrain = zoo.finetune(
            "astro_small",
            root / "aux",
            root / "pretrain",
            strategy="full",
            epochs=8,
            patience=4,
            image_size=(48,),
            registry_files=(str(registry),),
            progress=False,
        )
    return SimpleNamespace(
        root=root,
        registry=str(registry),
        data=root / "galaxies",
        pretrain=pretrain,
        weights=str(root / "pretrain" / "backbone.weights.h5"),
    )


def run(workspace, out, **settings):
    options = {
        "image_size": (48,),
        "registry_files": (workspace.registry,),
        "progress": False,
        "strategy": "head",
        "epochs": 3,
        "weights": workspace.weights,
    }
    return zoo.finetune("astro_small", workspace.data, out, **(options | settings))


def cache_counts(result):
    caches = result.summary["feature_cache"]
    return sum(c["computed"] for c in caches.values()), sum(c["reused"] for c in caches.values())


def pretrained_backbone(workspace):
    return zoo.create_backbone(
        "astro_small",
        weights=workspace.weights,
        input_shape=(48, 48, 3),
        registry=zoo.load_registry([workspace.registry]),
    )


def test_head_strategy_caches_features_and_reuses_them(workspace, tmp_path):
    first = run(workspace, tmp_path / "first")
    assert [p.name for p in first.phases] == ["head"]
    total = len(load_image_set(workspace.data).samples)  # train, val and test: all cached
    assert cache_counts(first) == (total, 0)
    assert first.summary["feature_cache"]["train"]["stored_views"] == 1  # astro_cnn ignores views

    second = run(workspace, tmp_path / "second")
    assert cache_counts(second) == (0, total)

    changed = shutil.copytree(workspace.data, tmp_path / "changed")
    victim = next((changed / TARGET[0]).iterdir())
    Image.fromarray(np.full((48, 48, 3), 90, "uint8")).save(victim)
    third = zoo.finetune(
        "astro_small",
        changed,
        tmp_path / "third",
        strategy="head",
        image_size=(48,),
        epochs=2,
        weights=workspace.weights,
        registry_files=(workspace.registry,),
        progress=False,
    )
    assert cache_counts(third) == (1, total - 1)

    resized = run(workspace, tmp_path / "resized", image_size=(56,))
    assert cache_counts(resized) == (total, 0)
    uncached = run(workspace, tmp_path / "uncached", cache=False)
    assert uncached.summary["feature_cache"] == {}


def test_cache_stores_eight_views_for_a_backbone_that_sees_orientation(workspace, tmp_path):
    with pytest.warns(UserWarning, match="randomly initialised backbone"):
        result = zoo.finetune(
            "mobilenet_v2",
            workspace.data,
            tmp_path / "run",
            weights="none",
            strategy="head",
            image_size=(48,),
            epochs=1,
            progress=False,
        )
    assert result.summary["feature_cache"]["train"]["stored_views"] == 8
    assert result.summary["feature_cache"]["val+test"]["stored_views"] == 1


def test_top_strategy_trains_only_the_top_blocks(workspace, tmp_path):
    """Pretrained: the top block's convolutions train, its batch-norm layers stay as they
    were (inference mode, moving statistics), so the head's work is not undone."""
    result = run(workspace, tmp_path / "top", strategy="top", unfreeze=1, finetune_epochs=2)
    assert [p.name for p in result.phases] == ["head", "top1"]
    assert result.phases[1].unfrozen_blocks == 1
    assert result.phases[1].lr == pytest.approx(1e-4)  # lr / 10
    before = pretrained_backbone(workspace)
    after = {w.path: w.numpy() for w in result.model.get_layer("astro_cnn").weights}
    head_kept = not result.phases[1].kept
    for weight in before.weights:
        changed = not np.allclose(weight.numpy(), after[weight.path])
        frozen = weight.path.startswith(("stem", "block1", "block2")) or "_bn/" in weight.path
        if frozen or head_kept:
            assert not changed, weight.path  # frozen, batch norm, or the head's model kept
        else:
            assert changed, weight.path  # the top block's convolutions, after block2_out
    if head_kept:
        assert "the head's model is kept" in " ".join(result.summary["notes"])


def test_fine_tuning_never_ends_worse_than_the_head(workspace, tmp_path):
    """The first epoch after unfreezing starts where the head left off, and the run keeps
    the better of the head and the fine-tuned model, judged on validation."""
    result = run(
        workspace, tmp_path / "top", strategy="top", unfreeze=2, epochs=6, finetune_epochs=3,
        patience=10,
    )  # fmt: skip
    head, top = result.phases
    first = top.history["val_loss"][0]
    assert first < head.best * 1.5 + 0.05, (first, head.best)  # no shock at the phase change
    kept = top.best if top.kept else head.best
    assert kept <= head.best
    assert result.metrics["val"]["accuracy"] >= max(head.history["val_accuracy"]) - 1e-6 or top.kept


def test_progressive_strategy_unfreezes_one_block_at_a_time(workspace, tmp_path):
    result = run(workspace, tmp_path / "progressive", strategy="progressive", finetune_epochs=1)
    names = [p.name for p in result.phases]
    assert names[0] == "head" and names[1:] == [f"top{i}" for i in range(1, len(names))]
    assert len(names) >= 2
    kept = [p for p in result.phases if p.kept]
    assert all(a.best > b.best for a, b in zip(kept, kept[1:], strict=False))
    rejected = [p for p in result.phases if not p.kept]
    assert rejected == [] or rejected == [result.phases[-1]]
    if rejected:
        assert any("progressive: stopped" in note for note in result.summary["notes"])


def test_progressive_strategy_rolls_back_a_block_that_does_not_help(workspace, tmp_path):
    """A learning rate far too high for the unfrozen block: its phase is rejected, undone."""
    result = run(
        workspace,
        tmp_path / "progressive",
        strategy="progressive",
        finetune_epochs=1,
        finetune_lr=5.0,
    )
    assert [(p.name, p.kept) for p in result.phases] == [("head", True), ("top1", False)]
    assert result.phases[1].best > result.phases[0].best
    assert "progressive: stopped at 0 block(s)" in " ".join(result.summary["notes"])
    trained = {w.path: w.numpy() for w in result.model.get_layer("astro_cnn").weights}
    for weight in pretrained_backbone(workspace).weights:  # the backbone as it was loaded
        np.testing.assert_array_equal(trained[weight.path], weight.numpy(), err_msg=weight.path)
    saved = keras.saving.load_model(result.path / "model.keras", compile=False)
    for a, b in zip(saved.weights, result.model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_interrupted_run_resumes_where_it_stopped(workspace, tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    class Record(keras.callbacks.Callback):
        begun: list[int] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.begun.append(epoch)

    out = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match="--resume"):
        run(workspace, out, epochs=5, patience=10, cache=False, callbacks=[Interrupt()])
    state = json.loads((out / "checkpoints" / "head" / "state.json").read_text())
    assert state["epochs_done"] == 2 and not state["finished"]

    with pytest.raises(RunDirError, match="--resume .* --force"):
        run(workspace, out, epochs=5, patience=10, cache=False)
    with pytest.raises(ConfigError, match="other settings: lr by default \\(asked 0.5\\); resume"):
        run(workspace, out, epochs=5, patience=10, cache=False, lr=0.5, resume=True)

    result = run(
        workspace, out, epochs=5, patience=10, cache=False, resume=True, callbacks=[Record()]
    )
    assert Record.begun == [2, 3, 4]
    assert len(result.phases[0].history["loss"]) == 5
    assert (out / "model.keras").exists()


def test_resume_with_more_epochs_extends_a_finished_run(workspace, tmp_path):
    """--resume --epochs N continues a phase that ran out of epochs; the phases after it
    start again from its new weights; asking again trains nothing."""

    class Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.begun = []

        def on_epoch_begin(self, epoch, logs=None):
            self.begun.append(epoch)

    out = tmp_path / "run"
    settings = dict(strategy="top", unfreeze=1, finetune_epochs=1, patience=10, cache=False)
    first = run(workspace, out, epochs=2, **settings)
    assert [p.epochs_done for p in first.phases] == [2, 1]

    record = Record()
    longer = run(workspace, out, epochs=4, resume=True, callbacks=[record], **settings)
    assert record.begun == [2, 3, 0]  # head epochs 3 and 4, then the top block again
    head, top = longer.phases
    assert head.epochs_done == 4 and len(head.history["loss"]) == 4
    assert top.first_epoch == 4 and len(top.history["loss"]) == 1
    assert len(json.loads((out / "history.json").read_text())["epochs"]["loss"]) == 5

    again = Record()
    run(workspace, out, epochs=4, resume=True, callbacks=[again], **settings)
    assert again.begun == []


def test_fits_bands_csv_catalog_and_corrupt_files(workspace, tmp_path):
    fits_root = tmp_path / "fits"
    write_synthetic_dataset(fits_root, TARGET, 16, 48, 5, seed=3, fmt="fits")
    (fits_root / TARGET[0] / "corrupt.fits").write_bytes(
        b"SIMPLE  =                    T" + b"\0" * 50
    )
    rows = ["path,label"] + [
        f"{p.relative_to(fits_root).as_posix()},{p.parent.name}"
        for p in sorted(fits_root.rglob("*.fits"))
    ]
    (fits_root / "catalog.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(DataWarning, match="skipped 1"):
        result = zoo.finetune(
            "astro_small",
            fits_root / "catalog.csv",
            tmp_path / "run",
            bands=("0", "2", "4"),
            image_size=(48,),
            strategy="head",
            epochs=2,
            weights=workspace.weights,
            registry_files=(workspace.registry,),
            progress=False,
        )
    assert result.summary["skipped_files"] == 1
    assert result.summary["data"]["skipped"][0]["file"].endswith("corrupt.fits")
    config = json.loads((result.path / "config.json").read_text())
    assert config["settings"]["bands"] == ["0", "2", "4"] and config["input_shape"] == [48, 48, 3]


def test_cli_finetune_and_evaluate(workspace, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli-run"

    def finetune(run_dir, *extra):
        args = ["finetune", "astro_small", str(workspace.data), "--out", str(run_dir)]
        return runner.invoke(cli, [*args, "--registry", workspace.registry, *extra])

    result = finetune(
        out, "-w", workspace.weights, "--image-size", "48", "--strategy", "head", "--epochs", "2"
    )
    assert result.exit_code == 0, result.output
    assert "test: accuracy" in result.output and f"run written to {out}" in result.output

    held = tmp_path / "held"
    write_synthetic_dataset(held, TARGET, 6, 48, 3, seed=99)
    result = runner.invoke(cli, ["evaluate", str(out), str(held)])
    assert result.exit_code == 0, result.output
    assert "accuracy:" in result.output
    metrics = json.loads((out / "evaluations" / "held" / "metrics.json").read_text())
    assert metrics["count"] == 18 and (out / "evaluations" / "held" / "confusion.png").exists()

    again = finetune(out)
    assert again.exit_code == 1 and "already holds files" in again.output
    bad = finetune(tmp_path / "x", "--epochs", "0")
    assert bad.exit_code == 1 and "--epochs must be at least 1" in bad.output


@pytest.mark.heavy
def test_transfer_learning_beats_training_from_scratch(workspace, tmp_path):
    """Pretrained on other galaxy classes, then given 8 images per class, the network wins."""
    tiny, held = tmp_path / "tiny", tmp_path / "held"
    write_synthetic_dataset(tiny, TARGET, 8, 48, 3, seed=21)
    write_synthetic_dataset(held, TARGET, 40, 48, 3, seed=22)
    settings = {
        "image_size": (48,),
        "registry_files": (workspace.registry,),
        "progress": False,
        "epochs": 30,
        "patience": 8,
        "val_split": 0.3,
        "test_split": 0.0,
    }
    transfer = zoo.finetune(
        "astro_small",
        tiny,
        tmp_path / "transfer",
        weights=workspace.weights,
        strategy="head",
        lr=3e-3,
        **settings,
    )
    scratch = zoo.finetune("astro_small", tiny, tmp_path / "scratch", strategy="full", **settings)

    def accuracy(result):
        images = load_image_set(held, labels=result.labels, all_in="test")
        probabilities = predict(result.model, images.samples, ImageGeometry((48, 48), 3))
        return float((probabilities.argmax(1) == [s.label for s in images.samples]).mean())

    transferred, from_scratch = accuracy(transfer), accuracy(scratch)
    assert transferred > from_scratch + 0.1, (transferred, from_scratch)
    assert transferred > 0.6  # three classes: chance is 0.33


@pytest.mark.subprocess
def test_multi_worker_strategy_and_mixed_precision_in_a_cluster_of_one(workspace, tmp_path):
    """TF_CONFIG selects MultiWorkerMirroredStrategy; mixed precision keeps a float32 softmax."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}
    script = (
        "import sys, zoo\n"
        "run = zoo.finetune('astro_small', sys.argv[1], sys.argv[2], weights=sys.argv[3], epochs=1,\n"
        "                   image_size=(48,), registry_files=(sys.argv[4],), mixed_precision=True,\n"
        "                   strategy='top', unfreeze=1, finetune_epochs=1, progress=False)\n"
        "print(run.model.get_layer('head').output.dtype)\n"
        "import keras; print(keras.mixed_precision.global_policy().name)\n"
    )
    env = {**os.environ, "TF_CONFIG": json.dumps(cluster), "ZOO_HOME": str(tmp_path / "home")}
    out = tmp_path / "cluster-run"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(workspace.data),
            str(out),
            workspace.weights,
            workspace.registry,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-2:] == ["float32", "float32"]  # policy restored
    config = json.loads((out / "config.json").read_text())
    assert config["distribution"] == "MultiWorkerMirroredStrategy (1 workers)"
    assert config["precision"] == "mixed_float16"


def staged_cnn(input_shape):
    """A user's own classifier: three conv stages, each ending in a pool, and a top."""
    inputs = keras.Input(input_shape)
    x = inputs
    for stage, filters in enumerate((8, 16, 32), start=1):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"s{stage}_conv"
        )(x)
        x = keras.layers.MaxPooling2D(name=f"s{stage}_pool")(x)
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="top")(features))


@pytest.mark.parametrize("strategy", ["top", "progressive"])
def test_a_model_file_cut_at_a_layer_gets_blocks_and_fine_tunes_them(workspace, tmp_path, strategy):
    path = tmp_path / "classifier.h5"
    staged_cnn((48, 48, 3)).save(path)
    inspect = CliRunner().invoke(
        cli, ["weights", "inspect", str(path), "--feature-layer", "features"]
    )
    assert inspect.exit_code == 0, inspect.output
    assert "blocks: s1_pool, s2_pool, s3_pool (inferred from its layers)" in inspect.output
    result = zoo.finetune(
        str(path),
        workspace.data,
        tmp_path / "run",
        strategy=strategy,
        unfreeze=1,
        epochs=2,
        finetune_epochs=1,
        model_file=zoo.ModelFileOptions(feature_layer="features"),
        progress=False,
    )
    names = [p.name for p in result.phases]
    assert names[:2] == ["head", "top1"] and result.phases[1].unfrozen_blocks == 1
    before = {w.path: w.numpy() for w in keras.saving.load_model(path).weights}
    backbone = next(
        layer
        for layer in result.model.layers
        if isinstance(layer, keras.Model) and layer.name != "head"
    )
    if strategy == "top":  # only the last stage, after s2_pool, trained
        for weight in backbone.weights:
            changed = not np.allclose(before[weight.path], weight.numpy())
            assert changed == weight.path.startswith("s3_"), weight.path


def test_the_saved_model_gives_the_validation_metrics_the_run_reported(workspace):
    """From scratch, with batch-norm statistics re-estimated: inference mode is what was scored."""
    assert workspace.pretrain.metrics["test"]["accuracy"] > 0.5  # four classes: chance is 0.25
    run = zoo.load_run(workspace.pretrain.path)
    assert run.config["plan"]["reestimate_batch_norm"]
    images = load_image_set(run.config["settings"]["data"], bands=None)
    val = images.split("val")
    probabilities = predict(run.model, val, run.geometry)
    reported = run.metrics["val"]
    accuracy = float((probabilities.argmax(1) == [s.label for s in val]).mean())
    assert accuracy == pytest.approx(reported["accuracy"]) and len(val) == reported["count"]
    history = run.phases[-1].history  # what validation said of the epoch that was kept
    best = int(np.argmin(history["val_loss"]))
    assert history["val_accuracy"][best] == pytest.approx(accuracy, abs=1e-6)


def test_defaults_learn_real_photographs(tmp_path):
    """scikit-image's 100 faces and 100 non-faces (25x25 grey), as a newcomer would try them."""
    from skimage.data import lfw_subset

    data = tmp_path / "faces"
    for index, image in enumerate(lfw_subset()):
        folder = data / ("face" if index < 100 else "not_face")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image * 255).astype("uint8")).save(folder / f"{index:03d}.png")
    result = CliRunner().invoke(
        cli,
        ["finetune", "astro_cnn", str(data), "--out", str(tmp_path / "run"), "--image-size", "48"],
    )
    assert result.exit_code == 0, result.output
    run = zoo.load_run(tmp_path / "run")
    assert run.config["weights"] == "simulated_1band"  # picked for one band
    assert run.metrics["test"]["accuracy"] >= 0.85, run.metrics["test"]
