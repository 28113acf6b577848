"""The ``zoo`` command line: parse, call one function of the core, print.

Listing and inspecting (``zoo list``, ``zoo info``, ``zoo plugins``, ``zoo --help``) never
import TensorFlow. Errors are one line on stderr and a non-zero exit; ``--debug`` (or
``ZOO_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import click

from zoo.errors import PluginWarning, ZooError
from zoo.registry import Registry
from zoo.spec import BackboneSpec

EXIT_ERROR = 1


class ZooGroup(click.Group):
    """A click group that turns errors into one line unless --debug is on."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, BrokenPipeError):
            raise
        except Exception as exc:
            if ctx.meta.get("zoo.debug"):
                raise
            if isinstance(exc, ZooError):
                message = str(exc)
            else:
                message = (
                    f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"
                )
            click.echo(f"error: {message}", err=True)
            ctx.exit(EXIT_ERROR)


def registry_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--registry FILE`` (repeatable): extra registry.yaml files to read."""
    return click.option(
        "--registry",
        "registries",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Extra registry.yaml file(s) of named backbones (repeatable).",
    )(command)


def _registry(registries: Sequence[str]) -> Registry:
    from zoo.plugin_loader import get_registry, load_registry

    return load_registry(registries) if registries else get_registry()


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo", prog_name="zoo")
@click.option(
    "--debug",
    is_flag=True,
    envvar="ZOO_DEBUG",
    help="Show full tracebacks instead of one-line errors.",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """zoo: image backbones to fine-tune, export and serve on TensorFlow Serving."""
    ctx.meta["zoo.debug"] = debug


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@registry_option
def list_command(pattern: str | None, as_json: bool, registries: Sequence[str]) -> None:
    """List registered backbones, optionally filtered by an fnmatch PATTERN ('resnet*')."""
    specs = _registry(registries).specs(pattern)
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
    _table(("NAME", "INPUT", "FEATURES", "PREPROCESS", "WEIGHTS", "PROVIDED BY"), rows)


@cli.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@registry_option
def info_command(name: str, as_json: bool, registries: Sequence[str]) -> None:
    """Show everything known about the backbone NAME, and who provided it."""
    spec = _registry(registries).get(name)
    if as_json:
        click.echo(json.dumps(spec.to_dict(), indent=2))
        return
    for line in _describe(spec):
        click.echo(line)


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List the plugins zoo loaded (built-in and installed) and what each registered."""
    from zoo.plugin_loader import get_registry

    plugins = get_registry().plugins
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in plugins], indent=2))
        return
    rows = [
        (
            p.name,
            p.distribution or "-",
            p.version or "-",
            "built-in" if p.builtin else "installed",
            f"failed: {p.error}" if p.error else ", ".join(p.backbones) or "(none)",
        )
        for p in plugins
    ]
    _table(("PLUGIN", "DISTRIBUTION", "VERSION", "KIND", "BACKBONES"), rows)


def _describe(spec: BackboneSpec) -> list[str]:
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
        f"blocks:        {', '.join(spec.blocks) or '-'}",
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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        )


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    if issubclass(category, PluginWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    warnings.showwarning = _show_warning
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        cli.main(args=list(argv) if argv is not None else sys.argv[1:], prog_name="zoo")
    except BrokenPipeError:  # `zoo list | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
