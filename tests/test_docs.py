"""Every hook is documented in its docstring and in docs/plugins.md (test_registry.py and
test_cli.py call each through a plugin registered for the test); CI runs the README's
test command."""

from __future__ import annotations

import inspect

from helpers import REPO
from zoo import hookspecs


def hook_names():
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "zoo_spec")
    ]


def test_there_are_hooks():
    assert hook_names() == ["register_backbones", "register_commands"]


def test_every_hook_has_a_docstring_and_a_docs_section():
    docs = (REPO / "docs" / "plugins.md").read_text()
    for name in hook_names():
        assert inspect.getdoc(getattr(hookspecs, name)), name
        assert f"### `{name}(" in docs, name


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    blocks = readme.split("```sh\n")
    test_command = next(b.split("\n")[0] for b in blocks[1:] if b.split("\n")[0].endswith("pytest"))
    assert test_command in (REPO / ".ci" / "run").read_text()
