"""``zoo export``: a finished run as a SavedModel version for TF Serving; or a version checked."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.errors import ExportError


@click.command("export")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--base", type=click.Path(file_okay=False), help="Base folder TF Serving watches.")
@click.option("--name", help="Model name: the version goes to BASE/NAME/<version>/.")
@click.option("--version", "version_number", type=int, help="Version [default: the next free one].")
@click.option("--force", is_flag=True, help="Replace an existing version.")
@click.option("--top-k", default=5, show_default=True, help="Labels returned per image.")
@click.option("--check", is_flag=True, help="Print the check; alone, check the version PATH.")
def export_command(
    path: str,
    base: str | None,
    name: str | None,
    version_number: int | None,
    force: bool,
    top_k: int,
    check: bool,
) -> None:
    """Export the run PATH as BASE/NAME/<version>/ (verified in a clean process before it is
    put in place); or, with --check alone, verify the exported version PATH."""
    from zoo.export import check as check_export

    if base is None and name is None:
        if not check:
            raise click.UsageError("give --base and --name to export a run, or --check PATH")
        report = check_export(path)
        for line in report.lines():
            click.echo(line)
        if not report.ok:
            raise ExportError(f"{path} failed its check")
        return
    if base is None or name is None:
        raise click.UsageError("--base and --name go together")
    done = export_to(path, base, name, version=version_number, force=force, top_k=top_k)
    if check:
        for line in done.check.lines():
            click.echo(line)


def export_to(run: str | Path, base: str, name: str, **options: object) -> object:
    """Export and say where the version went (``zoo finetune --export`` uses it too)."""
    from zoo.export import export

    done = export(run, base, name, progress=True, **options)
    signatures = ", ".join(done.manifest["signatures"])
    click.echo(f"exported version {done.version} to {done.path} (signatures: {signatures})")
    return done
