"""Training on a TF_CONFIG cluster, as Kubernetes runs it: TF_CONFIG checked, two workers
on loopback through the real CLI, and a worker that never comes named within the timeout."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from helpers import CLASSES, SMALL_REGISTRY, ZOO_SCRIPT
from zoo.cli import cli
from zoo.data.synth import write_synthetic_dataset
from zoo.errors import ConfigError
from zoo.train.cluster import read_cluster


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{port}" for port in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def test_tf_config_is_checked_before_anything_starts():
    config = tf_config([1111, 2222], 1)
    cluster = read_cluster({"TF_CONFIG": config})
    assert (cluster.size, cluster.rank, cluster.is_chief) == (2, 1, False)
    assert cluster.address == "127.0.0.1:2222" and "worker 1 of 2" in cluster.describe()
    chief = read_cluster(
        {
            "TF_CONFIG": '{"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief"}}'
        }
    )
    assert chief.is_chief and chief.size == 2
    assert read_cluster({}) is None
    for wrong, message in [
        ("{not json", "TF_CONFIG must be JSON"),
        (tf_config([1111, 2222], 2), r"task index 2 is not in the worker list \(127.0.0.1:1111, 127.0.0.1:2222\)"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker"}}', "task types ps"),
        ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker"}}', "listed twice: a:1"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator"}}', "must be chief or worker"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            read_cluster({"TF_CONFIG": wrong})


def test_the_keras_internals_patched_for_clusters_are_as_the_patches_expect():
    """zoo.train.keras_compat replaces two private Keras functions for multi-worker fit;
    this fails when a Keras release changes them, before any cluster run could."""
    from zoo.train import keras_compat

    assert keras_compat.changed_internals() == []


@pytest.fixture(scope="module")
def galaxies(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    write_synthetic_dataset(root / "data", CLASSES, 12, 48, 3, seed=31)
    (root / "small.yaml").write_text(SMALL_REGISTRY)
    return root


def finetune(root, out, *flags, tf_config_value=None, tmp=None):
    """`zoo finetune` as a worker would run it, in its own process."""
    env = {**os.environ, "ZOO_HOME": str(root / "home")}
    env.pop("TF_CONFIG", None)
    if tf_config_value:
        env["TF_CONFIG"] = tf_config_value
    if tmp:
        env["TMPDIR"] = str(tmp)
    command = [
        str(ZOO_SCRIPT), "finetune", "astro_small", str(root / "data"), "--out", str(out),
        "--registry", str(root / "small.yaml"), "--image-size", "48", "--weights", "none",
        "--no-augment", "--seed", "3", *flags,
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.subprocess
@pytest.mark.train
def test_two_workers_train_one_model_into_one_run_folder(galaxies, tmp_path):
    """The cluster command on two workers, with `head`: the single-worker run that it is
    compared with uses the feature cache, which a cluster turns off. (`full` on two
    workers is docs/cluster.md's own command, which test_guides runs and checks.)"""
    strategy = "head"
    ports = free_ports(2)
    out = tmp_path / "run"
    scratch = [tmp_path / f"tmp{i}" for i in range(2)]
    workers = []
    for index in range(2):
        scratch[index].mkdir()
        workers.append(
            finetune(
                galaxies,
                out,
                "--strategy",
                strategy,
                "--epochs",
                "2",
                "--batch-size",
                "16",
                tf_config_value=tf_config(ports, index),
                tmp=scratch[index],
            )  # fmt: skip
        )
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(outputs)
    assert f"worker 0 of 2 at 127.0.0.1:{ports[0]} (chief)" in outputs[0]
    assert f"worker 1 of 2 at 127.0.0.1:{ports[1]} (not the chief" in outputs[1]
    assert "the chief wrote the run to" in outputs[1]
    train = json.loads((out / "config.json").read_text())["data"]["counts"]["train"]
    total = sum(train.values())
    shares = [
        int(re.search(rf"worker {i}: reads (\d+) of the {total} training images", text).group(1))
        for i, text in enumerate(outputs)
    ]
    assert sum(shares) == total and abs(shares[0] - shares[1]) <= 1  # half each, every file once

    # one complete run folder, written by the chief; the other worker's scratch is gone
    for name in ("config.json", "summary.json", "model.keras", "metrics_test.json", "history.json"):
        assert (out / name).is_file(), name
    assert list(scratch[1].iterdir()) == []
    config = json.loads((out / "config.json").read_text())
    assert config["distribution"].startswith("MultiWorkerMirroredStrategy (2 workers)")
    assert "16 is the global batch, 8 per worker" in config["distribution"]
    assert len(json.loads((out / "history.json").read_text())["epochs"]["loss"]) == 2

    # both workers trained the same model: they report the same metrics
    def reported(output):
        return [line for line in output.splitlines() if line.startswith(("val:", "test:"))]

    assert reported(outputs[0]) == reported(outputs[1]) and len(reported(outputs[0])) == 2

    # and a single worker with the same global batch and seed lands close to it (this
    # process runs it: a worker without TF_CONFIG)
    alone = CliRunner().invoke(cli, [
        "finetune", "astro_small", str(galaxies / "data"), "--out", str(tmp_path / "alone"),
        "--registry", str(galaxies / "small.yaml"), "--image-size", "48", "--weights", "none",
        "--no-augment", "--seed", "3", "--strategy", strategy, "--epochs", "2",
        "--batch-size", "16",
    ])  # fmt: skip
    assert alone.exit_code == 0, alone.output
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert "feature cache: off on a cluster of 2 workers" in " ".join(notes)
    cached = json.loads((tmp_path / "alone" / "summary.json").read_text())["feature_cache"]
    assert sum(stats["computed"] for stats in cached.values()) > 0
    single = json.loads((tmp_path / "alone" / "metrics_val.json").read_text())
    cluster = json.loads((out / "metrics_val.json").read_text())
    assert abs(cluster["accuracy"] - single["accuracy"]) <= 0.2


@pytest.mark.subprocess
@pytest.mark.train
def test_a_worker_that_never_joins_is_named_within_the_timeout(galaxies, tmp_path):
    ports = free_ports(2)
    started = time.monotonic()
    lonely = finetune(galaxies, tmp_path / "run", "--cluster-timeout", "3",
                      tf_config_value=tf_config(ports, 0))  # fmt: skip
    output = lonely.communicate(timeout=120)[0]
    assert lonely.returncode == 1, output
    assert f"worker 1 at 127.0.0.1:{ports[1]} never answered" in output
    assert "--cluster-timeout" in output and time.monotonic() - started < 60
    assert not (tmp_path / "run").exists()


@pytest.mark.subprocess
@pytest.mark.train
def test_a_taken_address_is_refused_by_name(galaxies, tmp_path):
    ports = free_ports(2)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports[0]))
        squatter.listen()
        worker = finetune(galaxies, tmp_path / "run", "--cluster-timeout", "3",
                          tf_config_value=tf_config(ports, 0))  # fmt: skip
        output = worker.communicate(timeout=120)[0]
    assert worker.returncode == 1
    assert f"cannot listen on 127.0.0.1:{ports[0]}" in output and "task index" in output


@pytest.mark.subprocess
@pytest.mark.train
def test_a_killed_worker_restarted_with_the_same_command_lets_the_run_complete(galaxies, tmp_path):
    """SIGKILL one worker mid-run and start it again with the same command: the other
    worker notices, starts itself again to wait for it, and the run completes from the
    last full epoch."""
    import signal

    ports = free_ports(2)
    out = tmp_path / "run"
    flags = ("--strategy", "full", "--epochs", "6", "--patience", "20", "--batch-size", "16")

    def start(index):
        return finetune(galaxies, out, *flags, tf_config_value=tf_config(ports, index))

    chief, other = start(0), start(1)
    state = out / "checkpoints" / "full" / "state.json"
    deadline = time.monotonic() + 600
    while not (state.is_file() and json.loads(state.read_text())["epochs_done"] >= 2):
        assert time.monotonic() < deadline and chief.poll() is None, chief.stdout.read()
        time.sleep(0.2)
    other.send_signal(signal.SIGKILL)
    other.wait(timeout=60)
    done_before = json.loads(state.read_text())["epochs_done"]
    assert 2 <= done_before < 6

    again = start(1)  # the same command, for the killed worker only
    outputs = [again.communicate(timeout=900)[0], chief.communicate(timeout=900)[0]]
    assert [again.returncode, chief.returncode] == [0, 0], "\n".join(outputs)
    assert "the cluster lost a member" in outputs[1]
    assert "starting this worker again to wait for it (1 of 3)" in outputs[1]
    assert "resuming the unfinished run" in outputs[1]
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]["loss"]) == 6  # the epochs before the kill, then the rest
    assert (out / "model.keras").is_file() and (out / "summary.json").is_file()


RUN_OUT_OF_MEMORY = """
import sys
import keras, tensorflow as tf, zoo

class OutOfMemory(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating a tensor")

data, out, registry = sys.argv[1:]
try:
    zoo.finetune(
        "astro_small", data, out, strategy="full", epochs=3, batch_size=16, image_size=(48,),
        weights="none", augment=False, registry_files=(registry,), callbacks=[OutOfMemory()],
        progress=False,
    )
except zoo.ClusterMemberLost as exc:
    print("lost a member:", exc)
except tf.errors.ResourceExhaustedError as exc:
    print("its own error:", exc.message)
"""


@pytest.mark.subprocess
@pytest.mark.train
def test_a_workers_own_error_is_not_taken_for_a_lost_member(galaxies, tmp_path):
    """Out of memory on a cluster is the run's own failure: it is raised as it is, and
    the worker is not started again as if a peer had gone."""
    ports = free_ports(2)
    env = {**os.environ, "ZOO_HOME": str(galaxies / "home")}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RUN_OUT_OF_MEMORY,
                str(galaxies / "data"),
                str(tmp_path / "run"),
                str(galaxies / "small.yaml"),
            ],
            env={**env, "TF_CONFIG": tf_config(ports, index)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for index in range(2)
    ]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for output in outputs:
        assert "its own error: OOM when allocating a tensor" in output, output[-3000:]
        assert "lost a member" not in output
