"""``zoo weights inspect`` and ``zoo weights fetch``: weights before any training."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from zoo.cli.options import (
    BackboneOptions,
    backbone_options,
    parse_shape,
    registry,
    registry_option,
)


@click.group("weights")
def weights_group() -> None:
    """Inspect and fetch pretrained weights."""


@weights_group.command("inspect")
@click.argument("source")
@backbone_options
@click.option("--input-shape", help="H,W or H,W,C (default: the backbone's own).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--limit", default=20, show_default=True, help="Entries shown per category.")
@registry_option
def weights_inspect(
    source: str,
    backbone_options: BackboneOptions,
    input_shape: str | None,
    as_json: bool,
    limit: int,
    registries: Sequence[str],
) -> None:
    """Dry run: build SOURCE, load its weights and print the load report (no training)."""
    from zoo.build import create_backbone

    model = create_backbone(
        source,
        weights=backbone_options.weights,
        input_shape=parse_shape(input_shape) if input_shape else None,
        registry=registry(registries),
        model_file=backbone_options.model_file,
        rules=backbone_options.rules,
    )
    report = model.load_report
    shape = "x".join(str(d) for d in model.inputs[0].shape[1:])
    if as_json:
        data = {
            "backbone": model.backbone_spec.name,
            "input_shape": shape,
            "features": int(model.outputs[0].shape[-1]),
            "parameters": model.count_params(),
            "blocks": list(model.backbone_spec.blocks),
            "report": report.to_dict() if report else None,
        }
        click.echo(json.dumps(data, indent=2))
        return
    spec = model.backbone_spec
    click.echo(
        f"{spec.name}: {shape} -> {model.outputs[0].shape[-1]} features, "
        f"{model.count_params():,} parameters"
    )
    inferred = " (inferred from its layers)" if spec.carries_weights else ""
    click.echo(f"blocks: {', '.join(spec.blocks) or 'none'}{inferred}")
    if report:
        lines = report.lines(limit)
    elif spec.carries_weights:
        lines = [f"weights: those saved in {source}"]
    else:
        lines = ["no weights loaded: random initialisation"]
    for line in lines:
        click.echo(line)


@weights_group.command("fetch")
@click.argument("name")
@click.option("--weights", "-w", "weight_name", default="imagenet", show_default=True)
@registry_option
def weights_fetch(name: str, weight_name: str, registries: Sequence[str]) -> None:
    """Download (or find in the cache) the catalog weights of backbone NAME, and verify them."""
    from zoo.weights.download import fetch_weights

    spec = registry(registries).get(name)
    click.echo(fetch_weights(spec.weight(weight_name), backbone=spec.name))
