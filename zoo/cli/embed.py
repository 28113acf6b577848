"""``zoo embed`` and ``zoo similar``: representations of images, and search among them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from zoo.cli.options import parse_list, parse_shape, registry_option


@click.command("embed")
@click.argument("source", metavar="RUN_OR_BACKBONE")
@click.argument("data", type=click.Path(exists=True))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The embeddings file: NAME.parquet (needs pyarrow), or NAME.npy with NAME.csv and NAME.json.",
)
@click.option(
    "--weights",
    help="For a backbone: catalog weights, a weights file, or 'none' [default: its own default].",
)
@click.option("--image-size", help="For a backbone: input size, e.g. 64 or 64,96.")
@click.option("--bands", help="Bands to use, by index or name: 0,1,2 or g,r,i.")
@click.option("--batch-size", default=32, show_default=True)
@registry_option
def embed_command(
    source: str,
    data: str,
    out: str,
    weights: str | None,
    image_size: str | None,
    bands: str | None,
    batch_size: int,
    registries: Sequence[str],
) -> None:
    """Write the features of every image in DATA (a folder, at any depth, or a CSV
    catalog) as RUN_OR_BACKBONE computes them: a finished run's fine-tuned backbone, or
    a backbone with its default weights."""
    from zoo.embeddings import embed

    embeddings, counts = embed(
        source,
        data,
        out,
        weights=weights,
        image_size=parse_shape(image_size, "--image-size", (1, 2)) if image_size else None,
        bands=parse_list(bands),
        batch_size=batch_size,
        registry_files=tuple(registries),
        progress=True,
    )
    click.echo(
        f"embedded {counts['images']} images ({counts['cached']} from the cache), "
        f"{embeddings.vectors.shape[1]} features each, to {out}"
    )
    for skipped in embeddings.recipe["skipped"]:
        click.echo(f"skipped {skipped['file']}: {skipped['reason']}", err=True)


@click.command("similar")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("image", required=False)
@click.option("-k", "k", default=10, show_default=True, help="How many neighbours to list.")
@click.option(
    "--outliers",
    type=click.IntRange(min=1),
    help="List the N images furthest from their k nearest neighbours instead.",
)
def similar_command(file: str, image: str | None, k: int, outliers: int | None) -> None:
    """List the images of FILE (written by `zoo embed`) most like IMAGE, by cosine
    similarity. IMAGE is an image in FILE (its path, or the end of it), or a new image
    file, embedded as FILE's images were."""
    from zoo.embeddings import embed_images, nearest, read_embeddings
    from zoo.embeddings import outliers as furthest

    if k < 1:
        raise click.BadParameter("must be at least 1", param_hint="-k")
    embeddings = read_embeddings(file)
    if outliers:
        for rank, (row, distance) in enumerate(furthest(embeddings.vectors, outliers, k), 1):
            click.echo(f"{rank}\t{distance:.4f}\t{embeddings.labels[row]}\t{embeddings.paths[row]}")
        return
    if image is None:
        raise click.UsageError("give an IMAGE to search for, or --outliers N")
    row = embeddings.row_of(image)
    if row is not None:
        query = embeddings.vectors[row]
    elif Path(image).is_file():
        query = embed_images(embeddings.recipe, [image])[0]
    else:
        raise click.BadParameter(
            f"{image} is neither an image in {file} nor an image file", param_hint="IMAGE"
        )
    for rank, (found, similarity) in enumerate(
        nearest(embeddings.vectors, query, k, exclude=row), 1
    ):
        click.echo(
            f"{rank}\t{similarity:.4f}\t{embeddings.labels[found]}\t{embeddings.paths[found]}"
        )
