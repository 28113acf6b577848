"""The CLI through click's runner and through the real `zoo` console script."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from click.testing import CliRunner

from helpers import run_zoo, write_distribution
from zoo.cli import cli

BROKEN = {"broken_plugin.py": "raise ImportError('needs tensorflow_addons')\n"}


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_list_shows_builtins_as_a_table():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["NAME", "INPUT", "FEATURES"]
    for name in ("resnet50", "inception_v4", "nasnet_large", "astro_cnn"):
        assert any(line.startswith(name + " ") for line in lines), name


def test_list_pattern_and_json():
    result = invoke("list", "inception*", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert [d["name"] for d in data] == ["inception_resnet_v2", "inception_v3", "inception_v4"]
    assert data[1]["input_shape"] == [299, 299, 3] and data[1]["plugin"] == "inception"
    assert "no backbone matches" in invoke("list", "zzz*").output


def test_info_shows_the_whole_spec_and_its_provider():
    result = invoke("info", "resnet50")
    assert result.exit_code == 0
    assert "provided by:   plugin resnet (zoo)" in result.output
    assert "224x224x3" in result.output and "caffe" in result.output
    assert "imagenet: https://storage.googleapis.com/" in result.output
    assert "md5 4d473c1dd8becc155b73f8504c6f6626" in result.output
    data = json.loads(invoke("info", "resnet50", "--json").output)
    assert data["distribution"] == "zoo" and data["feature_dim"] == 2048


def test_info_unknown_name_is_one_line_with_a_suggestion():
    result = invoke("info", "resnet5")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: unknown backbone 'resnet5'; did you mean 'resnet50', 'resnet152' or 'resnet50_v2'?"
    )


def test_registry_option_adds_entries(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("backbones:\n  mine: {base: astro_cnn, input_shape: [48, 48, 1]}\n")
    result = invoke("info", "mine", "--registry", str(path))
    assert result.exit_code == 0
    assert f"provided by:   catalog {path}" in result.output
    assert "48x48x1" in result.output


def test_bad_registry_file_is_one_line_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("backbones:\n  mine: {base: astro_cnn, input_size: 48}\n")
    result = invoke("list", "--registry", str(path))
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert f"error: {path}: entry 'mine': field 'input_size'" in result.output


def test_plugins_command_lists_builtins():
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    data = {p["name"]: p for p in json.loads(result.output)}
    assert data["resnet"]["builtin"] and data["resnet"]["distribution"] == "zoo"
    assert "resnet50" in data["resnet"]["backbones"]
    assert "keras_applications" in invoke("plugins").output


def test_console_script_error_is_one_line_and_debug_shows_traceback():
    plain = run_zoo("info", "resnet5")
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == [
        "error: unknown backbone 'resnet5'; did you mean 'resnet50', 'resnet152' or 'resnet50_v2'?"
    ]
    debug = run_zoo("--debug", "info", "resnet5")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "UnknownBackboneError" in debug.stderr


def test_console_script_survives_a_broken_plugin_with_a_warning(tmp_path):
    site = write_distribution(tmp_path / "site", "broken-dist", {"broken": "broken_plugin"}, BROKEN)
    result = run_zoo("list", pythonpath=site)
    assert result.returncode == 0
    assert "resnet50" in result.stdout
    assert result.stderr.strip() == (
        "warning: plugin 'broken' (from broken-dist) failed to load: "
        "ImportError: needs tensorflow_addons; its backbones are unavailable"
    )
    plugins = run_zoo("plugins", pythonpath=site)
    assert "failed: needs tensorflow_addons" in plugins.stdout


def test_console_script_strict_plugins_is_fatal(tmp_path):
    site = write_distribution(tmp_path / "site", "broken-dist", {"broken": "broken_plugin"}, BROKEN)
    result = run_zoo("list", pythonpath=site, env={"ZOO_STRICT_PLUGINS": "1"})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: plugin 'broken' (from broken-dist) failed to load")


def test_listing_and_help_never_import_tensorflow():
    script = textwrap.dedent(
        """
        import sys
        from click.testing import CliRunner
        from zoo.cli import cli
        runner = CliRunner()
        for args in (["--help"], ["list"], ["list", "--json"], ["info", "inception_v4"],
                     ["info", "astro_cnn", "--json"], ["plugins"], ["list", "--help"]):
            result = runner.invoke(cli, args)
            assert result.exit_code == 0, (args, result.output)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras"})
        print(",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_closed_pipe_is_not_an_error():
    result = subprocess.run(
        f"'{sys.executable}' -m zoo list | head -n 1", shell=True, capture_output=True, text=True
    )
    assert result.stdout.startswith("NAME")
    assert "error" not in result.stderr.lower()
