"""``zoo list``, ``zoo info``, ``zoo plugins``: what is registered, and by whom.

None of these import TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from zoo.cli.options import registry, registry_option
from zoo.cli.output import table
from zoo.spec import BackboneSpec


@click.command("list")
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@registry_option
def list_command(pattern: str | None, as_json: bool, registries: Sequence[str]) -> None:
    """List registered backbones, optionally filtered by an fnmatch PATTERN ('resnet*')."""
    specs = registry(registries).specs(pattern)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in specs], indent=2))
        return
    if not specs:
        click.echo(f"no backbone matches {pattern!r}" if pattern else "no backbones registered")
        return
    rows = [
        (
            s.name,
            "x".join(map(str, s.input_shape)),
            str(s.feature_dim or "?"),
            s.preprocessing,
            ",".join(w.name for w in s.weights) or "-",
            s.provider,
        )
        for s in specs
    ]
    table(("NAME", "INPUT", "FEATURES", "PREPROCESS", "WEIGHTS", "PROVIDED BY"), rows)


@click.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@registry_option
def info_command(name: str, as_json: bool, registries: Sequence[str]) -> None:
    """Show everything known about the backbone NAME, and who provided it."""
    spec = registry(registries).get(name)
    if as_json:
        click.echo(json.dumps(spec.to_dict(), indent=2))
        return
    for line in describe(spec):
        click.echo(line)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@registry_option
def plugins_command(as_json: bool, registries: Sequence[str]) -> None:
    """List the plugins and registry files zoo loaded, and what each registered."""
    loaded = registry(registries)
    files: dict[str, list[str]] = {}
    for spec in loaded.specs():
        if spec.registry_file and not spec.plugin:
            files.setdefault(spec.registry_file, []).append(spec.name)
    if as_json:
        data = {
            "plugins": [p.to_dict() for p in loaded.plugins],
            "registry_files": [{"path": f, "backbones": names} for f, names in files.items()],
        }
        click.echo(json.dumps(data, indent=2))
        return
    rows = [
        (
            p.name,
            p.distribution or "-",
            p.version or "-",
            "built-in" if p.builtin else "installed",
            f"failed: {p.error}" if p.error else ", ".join(p.backbones) or "(none)",
        )
        for p in loaded.plugins
    ]
    rows += [(path, "-", "-", "registry file", ", ".join(names)) for path, names in files.items()]
    table(("PLUGIN", "DISTRIBUTION", "VERSION", "KIND", "BACKBONES"), rows)


def describe(spec: BackboneSpec) -> list[str]:
    """The spec as aligned lines of text, weight sources last."""
    lines = [
        f"name:          {spec.name}",
        f"description:   {spec.description or '-'}",
        f"provided by:   {spec.provider}",
        f"build:         {spec.build_path}",
    ]
    if spec.build_options:
        options = ", ".join(f"{k}={v!r}" for k, v in spec.build_options.items())
        lines.append(f"options:       {options}")
    lines += [
        f"input shape:   {'x'.join(map(str, spec.input_shape))} (height x width x channels)",
        f"preprocessing: {spec.preprocessing}",
        f"features:      {spec.feature_dim or 'unknown'}",
        f"blocks:        {_blocks(spec)}",
        f"default:       {', '.join(spec.default_weights) or 'random weights'}",
        f"licence:       {spec.licence or '-'}",
        f"citation:      {spec.citation or '-'}",
        "weights:" if spec.weights else "weights:       none (random initialisation only)",
    ]
    for source in spec.weights:
        where = source.url or source.path
        checksum = source.checksum
        verified = f"{checksum[0]} {checksum[1]}" if checksum else "no checksum recorded"
        lines.append(f"  {source.name}: {where}")
        if source.member:
            lines.append(f"    member:  {source.member}")
        lines.append(f"    verify:  {verified}")
        if source.licence:
            lines.append(f"    licence: {source.licence}")
        if source.description:
            lines.append(f"    about:   {source.description}")
    return lines


def _blocks(spec: BackboneSpec) -> str:
    if spec.blocks:
        return ", ".join(spec.blocks)
    return "inferred from the model's layers when it is built" if spec.carries_weights else "-"
