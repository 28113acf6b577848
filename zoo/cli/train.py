"""``zoo finetune`` and ``zoo evaluate``: train a model on a backbone, score it on new data."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from zoo.cli.app import EXIT_INTERRUPTED
from zoo.cli.options import (
    BackboneOptions,
    backbone_options,
    parse_list,
    parse_shape,
    registry_option,
)
from zoo.cli.quiet import stop_filtering
from zoo.data.targets import TASKS
from zoo.errors import ClusterMemberLost, TrainingInterrupted
from zoo.export.manifest import check_name
from zoo.train.config import OPTIMIZERS, SCHEDULES, STRATEGIES, FinetuneConfig

default = FinetuneConfig.default


@click.command("finetune")
@click.argument("backbone")
@click.argument("data", type=click.Path(exists=True))
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Run directory to write."
)
@backbone_options
@click.option(
    "--task",
    type=click.Choice(TASKS),
    default=default("task"),
    show_default=True,
    help="classify: one class per image. regress: numeric catalog columns. multilabel: 0/1 "
    "columns. votes: Galaxy Zoo vote counts (QUESTION_ANSWER columns).",
)
@click.option(
    "--targets",
    help="Catalog columns to predict, comma-separated [default: by task; regress needs them].",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default=default("strategy"),
    show_default=True,
    help="auto: head then top blocks when pretrained, else the whole network from scratch.",
)
@click.option(
    "--unfreeze",
    default=default("unfreeze"),
    show_default=True,
    help="Blocks to unfreeze with --strategy top.",
)
@click.option(
    "--epochs",
    type=int,
    help="Epochs of the first phase (head, or all from scratch) [default: by strategy].",
)
@click.option(
    "--finetune-epochs", type=int, help="Epochs of each unfreezing phase [default: by strategy]."
)
@click.option("--batch-size", default=default("batch_size"), show_default=True)
@click.option("--lr", type=float, help="Learning rate of the first phase [default: by strategy].")
@click.option(
    "--finetune-lr",
    type=float,
    help="Learning rate of unfrozen blocks [default: a tenth of the head's].",
)
@click.option(
    "--optimizer", type=click.Choice(OPTIMIZERS), default=default("optimizer"), show_default=True
)
@click.option(
    "--schedule",
    type=click.Choice(SCHEDULES),
    default=default("schedule"),
    show_default=True,
    help="cosine: a linear warm-up, then a cosine decay.",
)
@click.option("--warmup-epochs", type=int, help="Warm-up epochs of a cosine schedule.")
@click.option(
    "--patience",
    type=int,
    help="Early stopping: epochs without a better val loss [default: by strategy].",
)
@click.option("--label-smoothing", type=float, help="[default: 0.1 from scratch, else 0]")
@click.option(
    "--weight-decay",
    type=float,
    help="Decoupled weight decay (biases and batch norm exempt).  [default: 0]",
)
@click.option(
    "--precise-bn/--no-precise-bn",
    default=None,
    help="Re-estimate batch-norm statistics before each validation [default: from scratch].",
)
@click.option("--image-size", help="H, H,W or H,W,C [default: the backbone's].")
@click.option("--bands", help="Bands to use, by index or name: 0,1,2 or g,r,i.")
@click.option(
    "--augment/--no-augment",
    default=default("augment"),
    show_default=True,
    help="Random rotations and flips.",
)
@click.option(
    "--cache/--no-cache",
    default=default("cache"),
    show_default=True,
    help="Cache frozen-backbone features.",
)
@click.option(
    "--class-weights/--no-class-weights", default=default("class_weights"), show_default=True
)
@click.option(
    "--cluster-timeout",
    type=float,
    default=default("cluster_timeout"),
    show_default=True,
    help="Seconds to wait for the other workers of a TF_CONFIG cluster.",
)
@click.option(
    "--max-pixels",
    default=default("max_pixels"),
    show_default=True,
    help="Skip images larger than this many pixels.",
)
@click.option("--val-split", default=default("val_split"), show_default=True)
@click.option("--test-split", default=default("test_split"), show_default=True)
@click.option(
    "--hidden",
    help="Hidden layer sizes of the head, e.g. 256 or 512,128, or none [default: none to "
    "classify, 128 for the other tasks].",
)
@click.option("--dropout", default=default("dropout"), show_default=True)
@click.option(
    "--mixed-precision/--no-mixed-precision", default=None, help="[default: on with a GPU]"
)
@click.option("--seed", default=default("seed"), show_default=True)
@click.option(
    "--export",
    "export_base",
    type=click.Path(file_okay=False),
    help="Export the run to this base folder when it finishes.",
)
@click.option(
    "--name", "export_name", help="Model name of the export [default: the --out folder's name]."
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--force", is_flag=True, help="Replace a run already in --out.")
@registry_option
def finetune_command(
    backbone: str,
    data: str,
    out: str,
    backbone_options: BackboneOptions,
    image_size: str | None,
    bands: str | None,
    hidden: str | None,
    targets: str | None,
    registries: Sequence[str],
    export_base: str | None,
    export_name: str | None,
    **settings: Any,
) -> None:
    """Fine-tune BACKBONE on the labelled images in DATA (class folders or a CSV catalog).

    --task regress, multilabel or votes reads its targets from the columns of a CSV
    catalog (path plus the target columns).

    With --resume the run continues with the settings it started with; options given with
    it must agree, except --epochs, --finetune-epochs and --patience.
    """
    from zoo.train.cluster import read_cluster
    from zoo.train.finetune import finetune

    if export_name and not export_base:
        raise click.UsageError("--name goes with --export BASE")
    if export_base:
        check_name(export_name or Path(out).name)  # before training, not after
    settings.update(
        weights=backbone_options.weights,
        model_file=backbone_options.model_file,
        load_rules=backbone_options.rules,
        image_size=parse_shape(image_size, "--image-size", (1, 2, 3)) if image_size else None,
        bands=parse_list(bands),
        hidden=_hidden(hidden),
        targets=tuple(parse_list(targets) or ()),
        registry_files=tuple(registries),
    )
    try:
        if settings["resume"]:
            run = finetune(backbone, data, out, progress=True, **_given_on_command_line(settings))
        else:
            config = FinetuneConfig(backbone, data, out, **settings)
            run = finetune(config=config, progress=True)
    except TrainingInterrupted as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except ClusterMemberLost as exc:
        rejoin_the_cluster(exc)
    for split in ("val", "test"):
        scores = run.summary["metrics"].get(split)
        if scores:
            click.echo(f"{split}: {headline(scores)}")
    cluster = read_cluster()
    if cluster is not None and not cluster.is_chief:
        click.echo(
            f"{cluster.task_type} {cluster.task_index}: the chief wrote the run to {run.path}"
        )
        return
    skipped = run.summary["skipped_files"]
    if skipped:
        click.echo(
            f"skipped {skipped} file(s) that could not be used; see {run.path / 'summary.json'}"
        )
    click.echo(f"run written to {run.path}")
    if export_base:
        from zoo.cli.export import export_to

        export_to(run.path, export_base, export_name or Path(out).name)


def _hidden(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(int(h) for h in parse_list(text) or ())
    except ValueError:
        raise click.BadParameter(f"{text!r}: layer sizes such as 256 or 512,128, or none") from None


def headline(scores: dict[str, Any]) -> str:
    """A split's headline numbers on one line, whatever the task."""
    if "accuracy" in scores:
        return (
            f"accuracy {scores['accuracy']:.3f}, macro F1 {scores['macro_f1']:.3f}, "
            f"ECE {scores['expected_calibration_error']:.3f}"
        )
    parts = []
    for key, value in scores.items():
        values = value.items() if isinstance(value, dict) else [("", value)]
        parts += [
            f"{key.replace('_', ' ')}{' ' + name if name else ''} {v:.3f}"
            for name, v in values
            if v is not None
        ]
    return ", ".join(parts)


#: How many times a worker starts itself again after losing a member of its cluster.
CLUSTER_RESTARTS = 3
RESTARTS_ENV = "ZOO_CLUSTER_RESTARTS"


def rejoin_the_cluster(lost: ClusterMemberLost) -> None:
    """Start this worker's command again in this process (a cluster's strategy can only be
    set up at start-up): it waits for the lost member (--cluster-timeout) and continues the
    unfinished run, so restarting only the worker that failed is enough."""
    restarts = int(os.environ.get(RESTARTS_ENV, "0"))
    if restarts >= CLUSTER_RESTARTS:
        raise lost
    click.echo(
        f"warning: {lost}; starting this worker again to wait for it "
        f"({restarts + 1} of {CLUSTER_RESTARTS})",
        err=True,
    )
    os.environ[RESTARTS_ENV] = str(restarts + 1)
    sys.stdout.flush()
    stop_filtering()
    os.execv(sys.executable, [sys.executable, *sys.argv])


#: Settings that options of another name set (the rest share their option's name).
_SET_BY = {
    "model_file": (
        "feature_layer",
        "input_tensor",
        "feature_tensor",
        "signature",
        "output_name",
        "unsafe",
    ),
    "load_rules": ("skip", "rename", "strict"),
    "registry_files": ("registries",),
}


def _given_on_command_line(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings whose options the user typed (not left at their defaults)."""
    ctx = click.get_current_context()
    typed = {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    return {k: v for k, v in settings.items() if typed & set(_SET_BY.get(k, (k,)))}


@click.command("evaluate")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.argument("data", type=click.Path(exists=True))
@click.option("--name", help="Name of the evaluation folder [default: the data folder's name].")
@click.option("--batch-size", default=default("batch_size"), show_default=True)
def evaluate_command(run: str, data: str, name: str | None, batch_size: int) -> None:
    """Score the model of RUN on every image of DATA; writes RUN/evaluations/NAME/."""
    from zoo.train.evaluate import evaluate_run

    metrics, folder = evaluate_run(run, data, name=name, batch_size=batch_size, progress=True)
    for line in metrics.lines():
        click.echo(line)
    click.echo(f"written to {folder}")
