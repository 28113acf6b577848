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


def weight_source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of zoo.create_backbone, shared by every command that builds a backbone."""
    options = [
        click.option(
            "--weights", "-w", help="Catalog weight name (imagenet), weights file or checkpoint."
        ),
        click.option(
            "--skip", multiple=True, help="Regex of source variables not to load (repeatable)."
        ),
        click.option(
            "--rename", multiple=True, help="PATTERN=REPLACEMENT from source to model names."
        ),
        click.option("--strict", is_flag=True, help="Fail if any model variable is left unloaded."),
        click.option("--feature-layer", help="Cut a full model at this layer."),
        click.option("--input-tensor", help="Image input of a .meta graph, e.g. X:0."),
        click.option("--feature-tensor", help="Feature tensor of a .meta graph."),
        click.option("--signature", help="SavedModel signature (default serving_default)."),
        click.option("--output", "output_name", help="SavedModel signature output to use."),
        click.option("--unsafe", is_flag=True, help="Load .keras files with safe_mode off."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def backbone_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Turn weight_source_options values into create_backbone keyword arguments."""
    rename = []
    for rule in params.pop("rename"):
        pattern, sep, replacement = rule.partition("=")
        if not sep:
            raise click.BadParameter(f"{rule!r} is not PATTERN=REPLACEMENT", param_hint="--rename")
        rename.append((pattern, replacement))
    skip = params.pop("skip")
    return {
        "weights": params.pop("weights"),
        "skip": list(skip) if skip else None,
        "rename": rename,
        "strict": params.pop("strict"),
        "feature_layer": params.pop("feature_layer"),
        "input_tensor": params.pop("input_tensor"),
        "feature_tensor": params.pop("feature_tensor"),
        "signature": params.pop("signature"),
        "output": params.pop("output_name"),
        "safe_mode": not params.pop("unsafe"),
    }


def _parse_shape(
    text: str, option: str = "--input-shape", sizes: tuple[int, ...] = (2, 3)
) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) not in sizes or min(values, default=0) <= 0:
        raise click.BadParameter(f"{text!r} is not H,W or H,W,C", param_hint=option)
    return values


@cli.group("weights")
def weights_group() -> None:
    """Inspect and fetch pretrained weights."""


@weights_group.command("inspect")
@click.argument("source")
@weight_source_options
@click.option("--input-shape", help="H,W or H,W,C (default: the backbone's own).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--limit", default=20, show_default=True, help="Entries shown per category.")
@registry_option
def weights_inspect(
    source: str,
    input_shape: str | None,
    as_json: bool,
    limit: int,
    registries: Sequence[str],
    **params: Any,
) -> None:
    """Dry run: build SOURCE, load its weights and print the load report (no training)."""
    from zoo.build import create_backbone

    model = create_backbone(
        source,
        input_shape=_parse_shape(input_shape) if input_shape else None,
        registry=_registry(registries),
        **backbone_kwargs(params),
    )
    report = model.load_report
    shape = "x".join(str(d) for d in model.inputs[0].shape[1:])
    if as_json:
        data = {
            "backbone": model.backbone_spec.name,
            "input_shape": shape,
            "features": int(model.outputs[0].shape[-1]),
            "parameters": model.count_params(),
            "report": report.to_dict() if report else None,
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"{model.backbone_spec.name}: {shape} -> {model.outputs[0].shape[-1]} features, "
        f"{model.count_params():,} parameters"
    )
    for line in report.lines(limit) if report else ["no weights loaded: random initialisation"]:
        click.echo(line)


@weights_group.command("fetch")
@click.argument("name")
@click.option("--weights", "-w", "weight_name", default="imagenet", show_default=True)
@registry_option
def weights_fetch(name: str, weight_name: str, registries: Sequence[str]) -> None:
    """Download (or find in the cache) the catalog weights of backbone NAME, and verify them."""
    from zoo.weights.download import fetch_weights

    spec = _registry(registries).get(name)
    click.echo(fetch_weights(spec.weight(weight_name), backbone=spec.name))


@cli.group("data")
def data_group() -> None:
    """Make and inspect labelled image sets."""


@data_group.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--classes",
    default=None,
    help="Comma-separated classes (default: smooth_round,edge_on,loose_spiral,merger).",
)
@click.option("--per-class", default=100, show_default=True, help="Images per class.")
@click.option("--size", default=64, show_default=True, help="Image size in pixels.")
@click.option(
    "--bands", default=3, show_default=True, help="Bands per image (1-5; PNG takes 1 or 3)."
)
@click.option(
    "--seed", default=0, show_default=True, help="Random seed: the same seed gives the same files."
)
@click.option(
    "--format", "fmt", type=click.Choice(["png", "fits"]), default="png", show_default=True
)
def data_synth(
    out: str, classes: str | None, per_class: int, size: int, bands: int, seed: int, fmt: str
) -> None:
    """Write a labelled set of synthetic galaxies into OUT/<class>/ folders."""
    from zoo.data.synth import CLASSES, DEFAULT_CLASSES, write_synthetic_dataset

    chosen = (
        tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else DEFAULT_CLASSES
    )
    summary = write_synthetic_dataset(out, chosen, per_class, size, bands, seed, fmt)
    click.echo(f"wrote {summary.files} {fmt.upper()} images of {size}x{size}x{bands} to {out}")
    for name in chosen:
        click.echo(f"  {name}: {CLASSES[name]}")


@cli.command("finetune")
@click.argument("backbone")
@click.argument("data", type=click.Path(exists=True))
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Run directory to write."
)
@weight_source_options
@click.option(
    "--strategy",
    type=click.Choice(["head", "top", "progressive", "full"]),
    default="head",
    show_default=True,
)
@click.option(
    "--unfreeze", default=2, show_default=True, help="Blocks to unfreeze with --strategy top."
)
@click.option(
    "--epochs", default=10, show_default=True, help="Epochs of head training (upper bound)."
)
@click.option(
    "--finetune-epochs", type=int, help="Epochs of each unfreezing phase [default: --epochs]."
)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", default=1e-3, show_default=True, help="Learning rate of the head.")
@click.option(
    "--finetune-lr", type=float, help="Learning rate of unfrozen blocks [default: lr/10]."
)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True)
@click.option(
    "--schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True
)
@click.option(
    "--patience",
    default=3,
    show_default=True,
    help="Early stopping: epochs without a better val loss.",
)
@click.option("--image-size", help="H, H,W or H,W,C [default: the backbone's].")
@click.option("--bands", help="Bands to use, by index or name: 0,1,2 or g,r,i.")
@click.option(
    "--augment/--no-augment", default=True, show_default=True, help="Random rotations and flips."
)
@click.option(
    "--cache/--no-cache", default=True, show_default=True, help="Cache frozen-backbone features."
)
@click.option("--class-weights/--no-class-weights", default=True, show_default=True)
@click.option("--val-split", default=0.15, show_default=True)
@click.option("--test-split", default=0.15, show_default=True)
@click.option("--hidden", help="Hidden layer sizes of the head, e.g. 256 or 512,128.")
@click.option("--dropout", default=0.2, show_default=True)
@click.option(
    "--mixed-precision/--no-mixed-precision", default=None, help="[default: on with a GPU]"
)
@click.option("--seed", default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--force", is_flag=True, help="Replace a run already in --out.")
@registry_option
def finetune_command(
    backbone: str,
    data: str,
    out: str,
    image_size: str | None,
    bands: str | None,
    hidden: str | None,
    registries: Sequence[str],
    **params: Any,
) -> None:
    """Fine-tune BACKBONE on the labelled images in DATA (class folders or a CSV catalog)."""
    from zoo.train.config import FinetuneConfig
    from zoo.train.finetune import Interrupted, finetune

    options = backbone_kwargs(params)
    weights = options.pop("weights")
    config = FinetuneConfig(
        backbone,
        data,
        out,
        weights=weights,
        image_size=_parse_shape(image_size, "--image-size", (1, 2, 3)) if image_size else None,
        bands=tuple(b.strip() for b in bands.split(",")) if bands else None,
        hidden=tuple(int(h) for h in hidden.split(",")) if hidden else (),
        backbone_options={k: v for k, v in options.items() if v not in (None, [], ())},
        registry_files=tuple(registries),
        **params,
    )
    try:
        run = finetune(config=config, progress=sys.stderr.isatty())
    except Interrupted as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(130)
    for split in ("val", "test"):
        scores = run.summary["metrics"].get(split)
        if scores:
            click.echo(
                f"{split}: accuracy {scores['accuracy']:.3f}, macro F1 {scores['macro_f1']:.3f}, "
                f"ECE {scores['expected_calibration_error']:.3f}"
            )
    skipped = run.summary["skipped_files"]
    if skipped:
        click.echo(f"skipped {skipped} unreadable file(s); see {run.path / 'summary.json'}")
    click.echo(f"run written to {run.path}")


@cli.command("evaluate")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.argument("data", type=click.Path(exists=True))
@click.option("--name", help="Name of the evaluation folder [default: the data folder's name].")
@click.option("--batch-size", default=32, show_default=True)
def evaluate_command(run: str, data: str, name: str | None, batch_size: int) -> None:
    """Score the model of RUN on every image of DATA; writes RUN/evaluations/NAME/."""
    from zoo.train.evaluate import evaluate_run

    metrics, folder = evaluate_run(run, data, name=name, batch_size=batch_size)
    for line in metrics.lines():
        click.echo(line)
    click.echo(f"written to {folder}")


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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    try:
        cli.main(args=list(argv) if argv is not None else sys.argv[1:], prog_name="zoo")
    except BrokenPipeError:  # `zoo list | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
