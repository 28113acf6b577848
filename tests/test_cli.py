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
    data = {d["name"]: d for d in json.loads(result.output)}
    assert {"inception_resnet_v2", "inception_v3", "inception_v4"} <= set(data)
    assert all(name.startswith("inception") for name in data)
    assert data["inception_v3"]["input_shape"] == [299, 299, 3]
    assert data["inception_v3"]["plugin"] == "inception"
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
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: unknown backbone 'resnet5'; did you mean ")
    assert "'resnet50'" in result.output


def test_registry_option_adds_entries(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("backbones:\n  mine: {base: astro_cnn, input_shape: [48, 48, 1]}\n")
    result = invoke("info", "mine", "--registry", str(path))
    assert result.exit_code == 0
    assert f"provided by:   registry file {path}" in result.output
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
    data = {p["name"]: p for p in json.loads(result.output)["plugins"]}
    assert data["resnet"]["builtin"] and data["resnet"]["distribution"] == "zoo"
    assert "resnet50" in data["resnet"]["backbones"]
    assert "keras_applications" in invoke("plugins").output


def test_console_script_error_is_one_line_and_debug_shows_traceback():
    plain = run_zoo("info", "resnet5")
    assert plain.returncode == 1
    (line,) = plain.stderr.strip().splitlines()
    assert (
        line.startswith("error: unknown backbone 'resnet5'; did you mean ") and "'resnet50'" in line
    )
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
        "ImportError: needs tensorflow_addons; its backbones and commands are unavailable"
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


COMMANDS = """
import click
from zoo import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command("hello")
    def hello():
        \"\"\"Say hello.\"\"\"
        click.echo("hello from a plugin")

    @cli.command("list")
    def hijack():
        click.echo("hijacked")
"""

BROKEN_COMMANDS = """
from zoo import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command("half")
    def half():
        pass
    raise RuntimeError("cannot add commands")
"""


def test_plugin_commands_run_and_never_replace_a_builtin(tmp_path):
    site = write_distribution(
        tmp_path / "site", "cmd-dist", {"cmds": "cmd_plugin"}, {"cmd_plugin.py": COMMANDS}
    )
    hello = run_zoo("hello", pythonpath=site)
    assert hello.returncode == 0 and hello.stdout == "hello from a plugin\n"
    listing = run_zoo("list", "resnet50", pythonpath=site)
    assert (
        listing.returncode == 0
        and "resnet50" in listing.stdout
        and "hijacked" not in listing.stdout
    )
    assert listing.stderr.strip() == (
        "warning: plugin 'cmds' tried to replace the command 'zoo list'; it is kept as it was"
    )


def test_a_plugin_failing_to_add_commands_is_a_warning_and_adds_none(tmp_path):
    site = write_distribution(
        tmp_path / "site", "half-dist", {"half": "half_plugin"}, {"half_plugin.py": BROKEN_COMMANDS}
    )
    result = run_zoo("--help", pythonpath=site)
    assert result.returncode == 0
    assert "half" not in result.stdout.split("Commands:")[1]
    assert result.stderr.strip() == (
        "warning: plugin 'half' (from half-dist) failed to load: RuntimeError: cannot add "
        "commands; its commands are unavailable"
    )


def test_bad_synth_arguments_are_one_line_errors_naming_the_value(tmp_path):
    result = invoke("data", "synth", str(tmp_path / "out"), "--size", "9999")
    assert result.exit_code == 1
    assert result.output == "error: size 9999 is out of range; allowed: 16..512\n"
    typo = invoke("data", "synth", str(tmp_path / "out"), "--classes", "merger,edge_one")
    assert "did you mean 'edge_on'" in typo.output and "unexpected" not in typo.output
    assert not (tmp_path / "out").exists()


def test_plugins_lists_registry_files_beside_plugins(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("backbones:\n  mine: {base: astro_cnn}\n  yours: {base: resnet50}\n")
    result = invoke("plugins", "--registry", str(path))
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith(str(path)))
    assert row.split()[-3:] == ["file", "mine,", "yours"]
    data = json.loads(invoke("plugins", "--json", "--registry", str(path)).output)
    assert data["registry_files"] == [{"path": str(path), "backbones": ["mine", "yours"]}]


def test_registry_files_run_no_code_and_a_broken_user_one_is_a_warning(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.yaml"
    evil.write_text(
        "backbones:\n  evil:\n    build: os:system\n    input_shape: [8, 8, 3]\n"
        f"    options: {{command: 'touch {marker}'}}\n"
    )
    refused = run_zoo("info", "evil", "--registry", str(evil))
    assert refused.returncode == 1 and "no installed plugin registered" in refused.stderr
    assert "write a plugin" in refused.stderr and not marker.exists()
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.yaml").write_text("backbones: [\n")
    listing = run_zoo("list", "resnet50", env={"ZOO_HOME": str(home)})
    assert listing.returncode == 0 and "resnet50" in listing.stdout
    (line,) = listing.stderr.splitlines()
    assert line.startswith(f"warning: {home / 'registry.yaml'}:") and "not valid YAML" in line
    assert line.endswith("are unavailable until it is fixed")
