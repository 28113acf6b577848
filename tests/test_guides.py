"""The guides in docs/ run as written: every ```sh and ```python block, in order, in a new
folder, in a fresh virtual environment that sees this zoo (so `pip install` in a guide
installs there, not into the environment running the tests).

Blocks with ``file=PATH`` in their info string are written to PATH instead of run.
```console blocks are shown, not run: they hold only docker and kubectl lines, which
need a docker engine or a cluster that this machine does not have; the files they use
are validated in test_deploy.py.
"""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import REPO

GUIDES = ["plugins.md", "checkpoints.md", "finetuning.md", "serving.md", "cluster.md"]
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
END = "ZOO_GUIDE_END"
NOT_RUN_HERE = ("docker ", "kubectl ")


def blocks(guide: str) -> list[tuple[str, str, str]]:
    return FENCE.findall((REPO / "docs" / guide).read_text())


def script(guide: str) -> str:
    """One bash script for the guide's blocks; background jobs it starts end with it."""
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for number, (language, info, body) in enumerate(blocks(guide), start=1):
        lines.append(f"echo '--- {guide}, block {number} ({language}{info})' >&2")
        written = re.search(r"file=(\S+)", info)
        if written:
            path = written.group(1)
            lines.append(f"mkdir -p \"$(dirname '{path}')\"\ncat > '{path}' <<'{END}'\n{body}{END}")
        elif language == "sh":
            lines.append(body)
        elif language == "python":
            lines.append(f"python - <<'{END}'\n{body}{END}")
    return "\n".join(lines) + "\n"


def fresh_environment(folder: Path, with_pip: bool) -> dict[str, str]:
    """A virtual environment whose Python also sees the packages of the one running the
    tests (zoo included), with a ``zoo`` command of its own, and pip if the guide uses it
    (installing pip into a venv takes seconds)."""
    venv = folder / ".venv"
    bare = [] if with_pip else ["--without-pip"]
    subprocess.run([sys.executable, "-m", "venv", *bare, str(venv)], check=True, timeout=300)
    (packages,) = venv.glob("lib/python*/site-packages")
    outer = "; ".join(f"site.addsitedir({p!r})" for p in site.getsitepackages())
    (packages / "outer.pth").write_text(f"import site; {outer}\n")  # their .pth files too
    zoo = venv / "bin" / "zoo"
    zoo.write_text(f"#!{venv / 'bin' / 'python'}\nfrom zoo.cli import main\nmain()\n")
    zoo.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "ZOO_HOME": str(folder / ".zoo-home"),
    }


def check_cluster_guide(work: Path) -> None:
    """The guide's two workers trained one model into one folder, written by the chief."""
    run = work / "runs" / "cluster"
    for name in ("config.json", "summary.json", "model.keras", "metrics_test.json"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["distribution"].startswith("MultiWorkerMirroredStrategy (2 workers)")
    phases = json.loads((run / "history.json").read_text())["phases"]
    assert phases[-1]["name"] == "full" and phases[0]["epochs_done"] == 3  # --epochs: the first
    logs = [(work / f"worker{index}.log").read_text() for index in range(2)]
    assert "worker 0 of 2 at 127.0.0.1:23456 (chief)" in logs[0]
    assert "the chief wrote the run to" in logs[1]


#: What a guide's run must have left behind, beyond every command succeeding.
CHECKS = {"cluster.md": check_cluster_guide}


@pytest.mark.guide
@pytest.mark.parametrize("guide", GUIDES)
def test_the_guide_runs_as_written(guide, tmp_path):
    assert any(language == "sh" for language, _, _ in blocks(guide)), "a guide shows commands"
    work = tmp_path / "work"
    work.mkdir()
    commands = script(guide)
    (tmp_path / "guide.sh").write_text(commands)
    with_pip = "pip install" in commands
    done = subprocess.run(
        ["bash", str(tmp_path / "guide.sh")], cwd=work, env=fresh_environment(tmp_path, with_pip),
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, textwrap.shorten(done.stdout, 4000) + "\n" + done.stderr[-6000:]
    if guide in CHECKS:
        CHECKS[guide](work)


@pytest.mark.parametrize("guide", GUIDES)
def test_only_docker_and_kubectl_lines_are_left_unrun(guide):
    for language, info, body in blocks(guide):
        if language in ("sh", "python") or "file=" in info:
            continue
        commands = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
        if language == "console":
            assert all(line.startswith(NOT_RUN_HERE) for line in commands), body
        else:  # an illustration (yaml, text, ...), not commands
            assert not any(line.startswith(("zoo ", "python ", "pip ")) for line in commands), body
