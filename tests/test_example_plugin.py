"""The example third-party plugin, installed by pip: the entry-point path for real."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import run_zoo
from zoo import load_registry


def test_installed_example_appears_in_list_and_info(example_plugin_path):
    listing = run_zoo("list", "tiny*", pythonpath=example_plugin_path)
    assert listing.returncode == 0, listing.stderr
    assert "tinynet" in listing.stdout and "plugin tinynet (zoo-tinynet)" in listing.stdout
    info = json.loads(run_zoo("info", "tinynet", "--json", pythonpath=example_plugin_path).stdout)
    assert info["plugin"] == "tinynet" and info["distribution"] == "zoo-tinynet"
    assert info["build"] == "zoo_tinynet:build_tinynet"
    plugins = run_zoo("plugins", pythonpath=example_plugin_path).stdout
    assert any(
        line.split()[:4] == ["tinynet", "zoo-tinynet", "1.0.0", "installed"]
        for line in plugins.splitlines()
    )


@pytest.mark.subprocess
def test_installed_example_adds_a_command_to_zoo_help(example_plugin_path):
    help_text = run_zoo("--help", pythonpath=example_plugin_path)
    assert help_text.returncode == 0, help_text.stderr
    commands = help_text.stdout.split("Commands:")[1]
    assert "tinynet" in commands and "finetune" in commands
    done = run_zoo("tinynet", "--width", "8", pythonpath=example_plugin_path)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip().splitlines()[-1] == "total 1,488 parameters, 16 features"
    )  # 224 + 32 + 1,168 + 64
    assert done.stderr == ""  # TensorFlow's start-up lines stay hidden


def test_without_the_example_installed_it_is_absent():
    assert "tinynet" not in run_zoo("list").stdout
    assert "tinynet" not in run_zoo("--help").stdout


def test_example_backbone_builds_a_feature_extractor(example_plugin_path, monkeypatch):
    monkeypatch.syspath_prepend(str(example_plugin_path))
    spec = load_registry(user_registry=False).get("tinynet")
    model = spec.resolve_build()(spec.input_shape)
    features = model(np.zeros((2, *spec.input_shape), dtype="float32"))
    assert tuple(features.shape) == (2, spec.feature_dim)
