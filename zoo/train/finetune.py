"""``zoo.finetune``: transfer learning the way the literature recommends, in one call.

1. Freeze the backbone and train a new head. With the cache on, the frozen backbone's
   features are computed once (for the 8 views when augmenting) and the head trains on
   them, so an epoch costs almost nothing.
2. Then, by strategy: ``top`` unfreezes the top N blocks with a small learning rate;
   ``progressive`` unfreezes one more block at a time while validation improves and
   keeps the best; ``full`` trains everything at the small rate; ``head`` stops at 1.
3. Evaluate on the validation and test splits and write the run directory.

Every phase checkpoints each epoch: ``resume=True`` continues an interrupted run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from zoo.build import create_backbone
from zoo.data.dataset import ImageSet, load_image_set
from zoo.data.pipeline import worker_share
from zoo.errors import (
    ConfigError,
    RunDirError,
    TrainingError,
    TrainingInterrupted,
)
from zoo.fs import read_json
from zoo.plugin_loader import get_registry
from zoo.sources import source_kind
from zoo.tasks import task_for
from zoo.train.config import NO_WEIGHTS, FinetuneConfig
from zoo.train.distribute import deterministic_ops, precision
from zoo.train.model import (
    Network,
    activation_bytes,
    block_boundaries,
    build_network,
)
from zoo.train.plan import Plan, make_plan
from zoo.train.rundir import CONFIG, SUMMARY, Run, RunDir
from zoo.train.trainer import Trainer
from zoo.train.workers import Workers
from zoo.versions import library_versions
from zoo.weights.download import file_digest

#: Validation images named in config.json, for an export's warmup requests and checks.
EXAMPLES = 4


def finetune(
    backbone: str | None = None,
    data: str | Path | None = None,
    out: str | Path | None = None,
    *,
    config: FinetuneConfig | None = None,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
    **settings: Any,
) -> Run:
    """Fine-tune ``backbone`` on the labelled images in ``data``; write the run to ``out``.

    ``task`` (a setting) is "classify" by default; "regress", "multilabel" and "votes"
    read the ``targets`` columns of a CSV catalog (``zoo.data.targets``).

    Settings are those of FinetuneConfig (``strategy``, ``epochs``, ``lr``, ...); or pass a
    whole ``config``. With ``resume=True`` the run continues with the settings it started
    with: the settings given must agree with them (except ``epochs``, ``finetune_epochs``
    and ``patience``), and ``backbone`` and ``data`` may be left out. ``callbacks`` are
    extra Keras callbacks for every phase.
    """
    if config is None:
        if out is None:
            raise ConfigError("finetune needs an output folder (out)")
        given = {"backbone": backbone, "data": data, **settings}
        given = {k: v for k, v in given.items() if v is not None}
        if settings.get("resume"):
            config = _recorded_config(Path(out)).resume_with({**given, "out": str(out)})
        elif backbone is None or data is None:
            raise ConfigError("finetune needs a backbone, a data set and an output folder")
        else:
            config = FinetuneConfig(out=str(out), **given)
    workers = Workers.from_environment()
    resumed = workers.settings(config, _unfinished(config.out))
    if resumed is not config and progress:
        print(f"resuming the unfinished run in {config.out}", file=sys.stderr)
    config = resumed
    try:
        if not workers.writes_run:
            return _run_beside_the_chief(config, workers, list(callbacks), progress)
        run_dir = RunDir(config.out, new=not config.resume, force=config.force)
        run_dir.protect(config.data)
        with run_dir:
            if config.resume:  # a whole config must agree with the run's own
                _recorded_config(run_dir.path).resume_with(config.to_dict())
            return _run(config, run_dir, list(callbacks), progress, workers)
    except KeyboardInterrupt:
        raise TrainingInterrupted(workers.resume_hint(config.out)) from None


def _run_beside_the_chief(
    config: FinetuneConfig, workers: Workers, callbacks: list[Any], progress: bool
) -> Run:
    """A worker other than the chief trains in step with it, but the run folder is the
    chief's alone: this worker writes into scratch space that is removed afterwards
    (Keras's multi-worker saving pattern). Resuming starts it from the chief's checkpoints."""
    scratch = Path(tempfile.mkdtemp(prefix=workers.scratch_prefix()))
    try:
        if config.resume:  # the chief's run as it stands: both resume from the same epoch
            _recorded_config(Path(config.out)).resume_with(config.to_dict())
            shutil.copytree(Path(config.out), scratch / "run")
        with RunDir(scratch / "run", new=not config.resume) as run_dir:
            run = _run(config, run_dir, callbacks, progress, workers)
        return dataclasses.replace(run, path=Path(config.out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _unfinished(out: str | Path) -> bool:
    """A run folder that holds a started run without its summary: one to continue."""
    return (Path(out) / CONFIG).is_file() and not (Path(out) / SUMMARY).is_file()


def _recorded_config(out: Path) -> FinetuneConfig:
    """The settings the run in ``out`` started with."""
    if not (out / CONFIG).is_file():
        raise RunDirError(f"{out} holds no run to resume (no {CONFIG}); drop --resume to start one")
    return FinetuneConfig.from_dict(read_json(out / CONFIG)["settings"])


def _run(
    config: FinetuneConfig,
    run_dir: RunDir,
    callbacks: list[Any],
    progress: bool,
    workers: Workers,
) -> Run:
    """The recipe: data, network, the phases, evaluation, the run's files."""
    started = time.monotonic()
    if workers.cluster is not None and progress:
        print(f"cluster: {workers.cluster.describe()}", file=sys.stderr)
    # A multi-worker strategy must exist before TensorFlow does any other work.
    strategy, strategy_name = workers.strategy(config)
    with precision(config.mixed_precision) as policy, deterministic_ops():
        keras.utils.set_random_seed(config.seed)  # Python, numpy, TF: shuffles, dropout, init
        images = load_image_set(
            config.data,
            val_split=config.val_split,
            test_split=config.test_split,
            bands=config.bands,
            channels=_channels(config),
            max_pixels=config.max_pixels,
            progress=progress,
            task=config.task,
            targets=config.targets,
        )
        if workers.shares_files() and progress:
            train = images.split("train")
            mine = len(worker_share(train, workers.rank, workers.size))
            print(
                f"{workers.name}: reads {mine} of the {len(train)} "
                "training images each epoch (its share of the files)",
                file=sys.stderr,
            )
        with strategy.scope():
            network, weights = _build_network(config, images, progress)
        blocks = len(block_boundaries(network.backbone, network.spec.blocks))
        plan = make_plan(config, pretrained=network.pretrained, weights=weights, blocks=blocks)
        _check_plan(config, plan, network, blocks)
        if progress:
            print(f"plan: {plan.reason}", file=sys.stderr)
        record = _config_record(config, network, images, weights, plan, strategy_name, policy)
        run_dir.begin(record, images.labels)
        trainer = Trainer(
            config, plan, run_dir, images, network, strategy, callbacks, progress, workers
        )
        try:
            trainer.train()
        except Exception as exc:
            lost = workers.lost_member(exc)
            if lost is None:
                raise
            raise lost from None
        metrics = trainer.evaluate()
        summary = trainer.write_results(metrics, time.monotonic() - started)
    return Run(
        path=run_dir.path,
        config=run_dir.read_config(),
        labels=images.labels,
        phases=trainer.phases,
        metrics={split: m.to_dict() for split, m in metrics.items()},
        summary=summary,
        model=network.classifier,
    )


def _build_network(
    config: FinetuneConfig, images: ImageSet, progress: bool
) -> tuple[Network, str | None]:
    """The backbone with its weights, a new head, and the name or path of the weights used."""
    registry = get_registry(config.registry_files)
    spec = None if source_kind(config.backbone) else registry.get(config.backbone)
    shape = _input_shape(config, spec, images.channels)
    if config.weights == NO_WEIGHTS:
        weights = None
    elif config.weights is not None or spec is None:
        weights = config.weights
    else:  # the backbone's own default, for this many channels
        weights = spec.default_weight(shape[-1] if shape else spec.input_shape[-1])
    backbone = create_backbone(
        config.backbone,
        weights=weights,
        input_shape=shape,
        registry=registry,
        progress=progress,
        model_file=config.model_file,
        rules=config.load_rules,
    )
    task = task_for(images)
    network = build_network(
        backbone,
        task,
        bands=config.bands,
        hidden=task.default_hidden if config.hidden is None else config.hidden,
        dropout=config.dropout,
        weights_given=weights is not None,
    )
    return network, weights


def _head_layers(network: Network) -> list[int]:
    """The sizes of the head's hidden layers, as built."""
    return [
        int(layer.units) for layer in network.head.layers if layer.name.startswith("head_hidden")
    ]


def _check_plan(config: FinetuneConfig, plan: Plan, network: Network, blocks: int) -> None:
    """Refuse, before anything is written, what the backbone or the machine cannot do."""
    name = network.spec.name
    if plan.strategy in ("top", "progressive") and not blocks:
        raise ConfigError(
            f"backbone '{name}' declares no blocks, so its top blocks cannot be unfrozen "
            "alone; use --strategy head or full"
        )
    if config.strategy == "top" and config.unfreeze > blocks:  # auto takes what there is
        raise ConfigError(
            f"--unfreeze {config.unfreeze}: backbone '{name}' has {blocks} blocks; choose 1 to "
            f"{blocks}, or --strategy full to train them all"
        )
    needed = activation_bytes(network.classifier, config.batch_size)
    memory = _physical_memory()
    if memory and needed > memory and not tf.config.list_logical_devices("GPU"):
        height, width = network.geometry.size
        raise TrainingError(
            f"an input of {height}x{width} pixels needs at least {needed / 2**30:,.1f} GiB of "
            f"activations for a batch of {config.batch_size}, and this machine has "
            f"{memory / 2**30:.1f} GiB; lower --image-size or --batch-size"
        )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _channels(config: FinetuneConfig) -> int | None:
    """The channels the settings ask for, if they do: --image-size H,W,C or --bands."""
    if config.image_size and len(config.image_size) == 3:
        return config.image_size[2]
    return len(config.bands) if config.bands else None


def _input_shape(config: FinetuneConfig, spec: Any, data_channels: int) -> tuple[int, ...] | None:
    size = config.image_size
    channels = _channels(config) or data_channels
    if size is None:
        return None if spec is None else (*spec.input_shape[:2], channels)
    if len(size) == 1:
        return (size[0], size[0], channels)
    if len(size) == 2:
        return (*size, channels)
    return tuple(size)


def _config_record(
    config: FinetuneConfig,
    network: Network,
    images: ImageSet,
    weights: str | None,
    plan: Plan,
    distribution: str,
    policy: str,
) -> dict[str, Any]:
    """What config.json holds: everything needed to understand, repeat or load the run."""
    report = network.backbone.load_report
    geometry = network.geometry
    loaded = Path(report.source) if report else None
    return {
        "settings": config.to_dict(),
        "plan": plan.to_dict(),
        "versions": library_versions(),
        "backbone": network.spec.to_dict(),
        "weights": weights,
        "weights_sha256": file_digest(loaded, "sha256") if loaded and loaded.is_file() else None,
        "model_modules": list(network.spec.model_modules),
        "input_shape": [*geometry.size, geometry.channels],
        "labels": list(images.labels),
        "task": network.task.to_dict(),
        "head": {"hidden": _head_layers(network), "dropout": config.dropout},
        "data": images.summary(),
        "examples": [s.relpath for s in images.split("val")[:EXAMPLES]],
        "load_report": report.to_dict() if report else None,
        "distribution": distribution,
        "precision": policy,
    }
