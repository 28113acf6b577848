"""``zoo data synth``: labelled sets of synthetic galaxies."""

from __future__ import annotations

import click

from zoo.cli.options import parse_list
from zoo.data.synth_config import CLASSES, DEFAULT_CLASSES, FORMATS, SynthConfig

_DEFAULTS = SynthConfig()


@click.group("data")
def data_group() -> None:
    """Make and inspect labelled image sets."""


@data_group.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--classes",
    help=f"Comma-separated classes [default: {','.join(DEFAULT_CLASSES)}; all: {','.join(CLASSES)}].",
)
@click.option(
    "--per-class", default=_DEFAULTS.per_class, show_default=True, help="Images per class."
)
@click.option("--size", default=_DEFAULTS.size, show_default=True, help="Image size in pixels.")
@click.option(
    "--bands",
    default=_DEFAULTS.bands,
    show_default=True,
    help="Bands per image (1-5; PNG takes 1 or 3).",
)
@click.option(
    "--seed",
    default=_DEFAULTS.seed,
    show_default=True,
    help="Random seed: the same seed gives the same files.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default=_DEFAULTS.fmt, show_default=True
)
@click.option(
    "--catalog",
    is_flag=True,
    help="Also write OUT/catalog.csv: each image's drawn parameters, flux, S/N, 0/1 flags "
    "and simulated volunteer votes (targets for --task regress, multilabel, votes).",
)
def data_synth(
    out: str,
    classes: str | None,
    per_class: int,
    size: int,
    bands: int,
    seed: int,
    fmt: str,
    catalog: bool,
) -> None:
    """Write a labelled set of synthetic galaxies into OUT/<class>/ folders."""
    from zoo.data.synth import write_synthetic_dataset

    chosen = parse_list(classes) or DEFAULT_CLASSES
    summary = write_synthetic_dataset(
        out, chosen, per_class, size, bands, seed, fmt, catalog=catalog, progress=True
    )
    click.echo(f"wrote {summary.files} {fmt.upper()} images of {size}x{size}x{bands} to {out}")
    if summary.catalog:
        click.echo(f"and their parameters and volunteer votes to {summary.catalog}")
    for name in summary.classes:
        click.echo(f"  {name}: {CLASSES[name]}")
