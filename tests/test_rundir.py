"""Run folders through the real CLI: --force, data that must survive, one writer, kills."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from click.testing import CliRunner
from PIL import Image

import zoo
from helpers import CLASSES, SMALL_REGISTRY, ZOO_SCRIPT
from zoo.cli import cli
from zoo.data.synth import write_synthetic_dataset
from zoo.train.rundir import MARKER, RunDir

PNG = b"\x89PNG\r\n\x1a\n"
COMPLETE = (
    MARKER,
    "config.json",
    "labels.txt",
    "history.json",
    "model.keras",
    "head.weights.h5",
    "backbone.weights.h5",
    "metrics_val.json",
    "metrics_test.json",
    "metrics.txt",
    "learning_curves.png",
    "summary.json",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rundir")
    write_synthetic_dataset(root / "galaxies", ("smooth_round", "edge_on"), 20, 48, 3, seed=4)
    (root / "small.yaml").write_text(SMALL_REGISTRY)
    return root


def finetune_args(data, out, *extra):
    return [
        "finetune",
        "astro_small",
        str(data / "galaxies"),
        "--out",
        str(out),
        "--registry",
        str(data / "small.yaml"),
        "--image-size",
        "48",
        "--strategy",
        "full",
        *extra,
    ]


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def start_finetune(data, out, *extra):
    return subprocess.Popen(
        [str(ZOO_SCRIPT), *finetune_args(data, out, *extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def old_run(path):
    """A finished-looking run folder with a file of the user's in it."""
    with RunDir(path, new=True) as run_dir:
        run_dir.begin({"settings": {}}, ["a", "b"])
    (path / "notes.txt").write_text("my notes")
    return path


def test_a_finished_run_folder_holds_everything(shared_run):
    """The shared run (from scratch, the ``full`` strategy): every file, and what they say."""
    run, folder = shared_run.run, shared_run.run.path
    for name in COMPLETE + ("confusion_val.png", "confusion_test.png"):
        assert (folder / name).is_file(), name
    for name in ("learning_curves.png", "confusion_val.png", "confusion_test.png"):
        assert (folder / name).read_bytes()[:8] == PNG and Image.open(folder / name).width > 100
    assert list((folder / "tensorboard").rglob("events.out.tfevents*"))

    config = json.loads((folder / "config.json").read_text())
    assert config["settings"]["strategy"] == "full" and config["settings"]["seed"] == 0
    assert {"tensorflow", "keras", "numpy", "zoo", "python"} <= set(config["versions"])
    assert set(config["data"]["split_digests"]) == {"train", "val", "test"}
    assert config["labels"] == sorted(CLASSES) and config["input_shape"] == [48, 48, 3]
    history = json.loads((folder / "history.json").read_text())
    assert [p["name"] for p in history["phases"]] == ["full"]  # from scratch: no head phase
    test = json.loads((folder / "metrics_test.json").read_text())
    assert set(test) >= {"accuracy", "per_class", "confusion", "expected_calibration_error"}
    assert (folder / "labels.txt").read_text().split() == sorted(CLASSES)
    assert run.labels == tuple(sorted(CLASSES)) and run.metrics["test"] == test  # zoo.load_run


def test_force_refuses_a_folder_that_is_not_a_run_and_keeps_its_files(data, tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("\\documentclass{article}")
    result = invoke(*finetune_args(data, thesis, "--force"))
    assert result.exit_code == 1
    assert "holds files that are not a zoo run" in result.output
    assert (thesis / "thesis.tex").read_text() == "\\documentclass{article}"


@pytest.mark.parametrize("where", ["data", "parent", "inside"])
def test_the_data_is_never_the_run_folder(data, tmp_path, where):
    copy = tmp_path / "project" / "galaxies"
    write_synthetic_dataset(copy, ("smooth_round", "edge_on"), 3, 48, 3, seed=1)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = {"data": copy, "parent": copy.parent, "inside": copy / "run"}[where]
    result = invoke(
        "finetune", "astro_cnn", str(copy), "--out", str(out), "--force", "--image-size", "48"
    )
    assert result.exit_code == 1
    assert "data" in result.output and "choose a run folder outside it" in result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.train
def test_force_replaces_the_old_run_only_once_the_new_one_has_started(data, tmp_path):
    out = old_run(tmp_path / "run")
    one_class = tmp_path / "one_class"
    write_synthetic_dataset(one_class, ("merger",), 4, 48, 3, seed=2)
    failed = invoke(
        "finetune", "astro_cnn", str(one_class), "--out", str(out), "--force", "--image-size", "48"
    )
    assert failed.exit_code == 1 and "only one class" in failed.output
    assert (out / "notes.txt").read_text() == "my notes"  # the old run is untouched

    done = invoke(*finetune_args(data, out, "--force", "--epochs", "1"))
    assert done.exit_code == 0, done.output
    assert not (out / "notes.txt").exists()
    assert json.loads((out / "config.json").read_text())["settings"]["epochs"] == 1
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.subprocess
def test_a_second_writer_is_refused_while_the_first_runs(data, tmp_path):
    out = tmp_path / "run"
    first = start_finetune(data, out, "--epochs", "3", "--patience", "3")
    wait_for(lambda: (out / "config.json").exists(), first)
    second = invoke(*finetune_args(data, out, "--force", "--epochs", "2"))  # this process
    assert second.exit_code == 1
    assert f"being written by another zoo process (pid {first.pid}: " in second.output
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    config = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert config["settings"]["epochs"] == 3 and summary["phases"][0]["epochs_done"] == 3


@pytest.mark.subprocess
@pytest.mark.parametrize("moment", ["after_start", "mid_phase"])
def test_a_run_killed_at_any_moment_resumes_to_a_complete_run(data, tmp_path, moment):
    out = tmp_path / "run"
    state = out / "checkpoints" / "full" / "state.json"
    first = start_finetune(data, out, "--epochs", "3", "--patience", "3")
    if moment == "after_start":
        wait_for(lambda: (out / MARKER).exists(), first)
    else:
        wait_for(
            lambda: state.exists() and json.loads(state.read_text())["epochs_done"] >= 1, first
        )
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (out / "summary.json").exists()

    # as the README shows it: the settings come from the run
    resumed = invoke(
        "finetune", "astro_small", str(data / "galaxies"), "--out", str(out), "--resume"
    )
    assert resumed.exit_code == 0, resumed.output
    for name in COMPLETE:
        assert (out / name).is_file(), name
    run = zoo.load_run(out)
    assert [p.name for p in run.phases] == ["full"] and run.phases[0].epochs_done == 3
    assert len(run.phases[0].history["loss"]) == 3
    assert run.labels == ("edge_on", "smooth_round")
    assert not list(out.rglob(".tmp-*"))
