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
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from zoo.build import create_backbone
from zoo.data.dataset import ImageSet, load_image_set
from zoo.data.pipeline import image_dataset, split_datasets, worker_shards, worker_share
from zoo.errors import (
    ClusterMemberLost,
    ConfigError,
    RunDirError,
    TrainingError,
    TrainingInterrupted,
    TrainingWarning,
)
from zoo.fs import read_json
from zoo.plugin_loader import get_registry
from zoo.preprocessing import Preprocessing
from zoo.sources import source_kind
from zoo.train.batch_norm import BatchNormEstimator
from zoo.train.cluster import Cluster, read_cluster
from zoo.train.config import FinetuneConfig
from zoo.train.distribute import choose_strategy, deterministic_ops, precision
from zoo.train.evaluate import predict
from zoo.train.feature_cache import SplitFeatures, split_features
from zoo.train.metrics import ClassificationMetrics, classification_metrics
from zoo.train.model import (
    Network,
    activation_bytes,
    block_boundaries,
    build_encoder,
    build_network,
    set_trainable_top,
)
from zoo.train.phases import PhaseData, PhaseRecord, read_record, run_phase
from zoo.train.plan import PhasePlan, Plan, make_plan
from zoo.train.rundir import CONFIG, SUMMARY, Run, RunDir
from zoo.versions import library_versions
from zoo.weights.download import file_digest

#: Validation images named in config.json, for an export's warmup requests and checks.
EXAMPLES = 4

#: What a collective raises when a peer is gone (Unavailable) or came back as a new
#: process (Aborted: "a different incarnation"), and what the ops queued behind it raise.
#: Other errors (out of memory, bad data) are the run's own and are raised as they are.
MEMBER_LOST = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
    tf.errors.DeadlineExceededError,
)


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
    cluster = read_cluster()
    if cluster is not None and not (config.resume or config.force) and _unfinished(config.out):
        # A restarted worker runs the command it started with: the cluster's run continues.
        if progress:
            print(f"resuming the unfinished run in {config.out}", file=sys.stderr)
        config = dataclasses.replace(config, resume=True)
    if cluster is not None and not cluster.is_chief:
        return _run_beside_the_chief(config, cluster, list(callbacks), progress)
    run_dir = RunDir(config.out, new=not config.resume, force=config.force)
    run_dir.protect(config.data)
    try:
        with run_dir:
            if config.resume:  # a whole config must agree with the run's own
                _recorded_config(run_dir.path).resume_with(config.to_dict())
            return _run(config, run_dir, list(callbacks), progress, cluster)
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"interrupted; the run in {config.out} was checkpointed after its last full epoch: "
            "continue it with --resume (resume=True)"
        ) from None


def _run_beside_the_chief(
    config: FinetuneConfig, cluster: Cluster, callbacks: list[Any], progress: bool
) -> Run:
    """A worker other than the chief trains in step with it, but the run folder is the
    chief's alone: this worker writes into scratch space that is removed afterwards
    (Keras's multi-worker saving pattern). Resuming starts it from the chief's checkpoints."""
    scratch = Path(tempfile.mkdtemp(prefix=f"zoo-{cluster.task_type}{cluster.task_index}-"))
    try:
        if config.resume:  # the chief's run as it stands: both resume from the same epoch
            _recorded_config(Path(config.out)).resume_with(config.to_dict())
            shutil.copytree(Path(config.out), scratch / "run")
        with RunDir(scratch / "run", new=not config.resume) as run_dir:
            run = _run(config, run_dir, callbacks, progress, cluster)
        return dataclasses.replace(run, path=Path(config.out))
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"interrupted; restart {cluster.task_type} {cluster.task_index} with --resume"
        ) from None
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
    cluster: Cluster | None = None,
) -> Run:
    """The recipe: data, network, the phases, evaluation, the run's files."""
    started = time.monotonic()
    if cluster is not None and progress:
        print(f"cluster: {cluster.describe()}", file=sys.stderr)
    # A multi-worker strategy must exist before TensorFlow does any other work.
    strategy, strategy_name = choose_strategy(cluster, config.cluster_timeout)
    workers = cluster.size if cluster else 1
    if workers > 1:
        strategy_name += (
            f"; --batch-size {config.batch_size} is the global batch, "
            f"{config.batch_size // workers} per worker"
        )
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
        )
        if workers > 1 and progress:
            train = images.split("train")
            mine = len(worker_share(train, cluster.rank, workers))
            print(
                f"{cluster.task_type} {cluster.task_index}: reads {mine} of the {len(train)} "
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
        trainer = _Trainer(
            config, plan, run_dir, images, network, strategy, callbacks, progress, workers
        )
        try:
            trainer.train()
        except MEMBER_LOST as exc:
            if workers == 1:
                raise
            raise ClusterMemberLost(
                f"the cluster lost a member ({exc.message.strip().splitlines()[0]}); with "
                "every worker running the same command again, the run continues from its "
                "last full epoch"
            ) from None
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
    if config.weights == "none":
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
        **config.backbone_options,
    )
    network = build_network(
        backbone,
        len(images.labels),
        bands=config.bands,
        hidden=config.hidden,
        dropout=config.dropout,
        weights_given=weights is not None,
    )
    return network, weights


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
        "data": images.summary(),
        "examples": [s.relpath for s in images.split("val")[:EXAMPLES]],
        "load_report": report.to_dict() if report else None,
        "distribution": distribution,
        "precision": policy,
    }


class _Trainer:
    """The phases of one run, its evaluation and its results; each method is one step."""

    def __init__(
        self,
        config: FinetuneConfig,
        plan: Plan,
        run_dir: RunDir,
        images: ImageSet,
        network: Network,
        strategy: Any,
        callbacks: list[Any],
        progress: bool,
        workers: int = 1,
    ) -> None:
        self.config = config
        self.plan = plan
        self.run_dir = run_dir
        self.images = images
        self.network = network
        self.strategy = strategy
        self.callbacks = callbacks
        self.progress = progress
        self.phases: list[PhaseRecord] = []
        self.trained_now = False  # a phase trained in this process: later ones start again
        self.workers = workers
        self.notes: list[str] = []
        self.features: SplitFeatures | None = None  # set when the head trains on cached features
        if not network.pretrained and plan.strategy == "head":
            self.notes.append("random backbone weights with --strategy head: only the head learns")
            warnings.warn(
                "training only a head on a randomly initialised backbone; pass --weights, or "
                "use --strategy full to train the whole network",
                TrainingWarning,
                stacklevel=4,
            )

    # --- the phases ---------------------------------------------------------------------

    def train(self) -> None:
        plan = self.plan
        if plan.head is not None:
            self._head_phase(plan.head)
        if plan.strategy == "top":
            self._tune_phase(f"top{plan.unfreeze}", blocks=plan.unfreeze)
        elif plan.strategy == "full":
            self._tune_phase("full", blocks=None)
        elif plan.strategy == "progressive":
            self._progressive()

    def _head_phase(self, phase: PhasePlan) -> None:
        config, network = self.config, self.network
        network.backbone.trainable = False
        if config.cache and self.workers > 1:
            self.notes.append(
                f"feature cache: off on a cluster of {self.workers} workers; the head trained "
                "on images through the frozen backbone"
            )
        if config.cache and self.workers == 1:  # the head alone, on cached features
            self.features = split_features(
                build_encoder(network.backbone, network.spec.preprocessing),
                self.images,
                network.geometry,
                scheme=network.spec.preprocessing,
                augment=config.augment,
                batch_size=config.batch_size,
                progress=self.progress,
            )
            train, val, steps = self.features.datasets(config.batch_size, config.seed)
            model, data = network.head, PhaseData(train, val, steps)
        else:
            model, data = network.classifier, self._image_data()
        self._phase(PhaseRecord("head", phase.lr), model, data, phase)

    def _tune_phase(self, name: str, blocks: int | None) -> PhaseRecord:
        network, phase = self.network, self.plan.tune
        assert phase is not None
        unfrozen = set_trainable_top(network.backbone, network.spec.blocks, blocks)
        record = PhaseRecord(name, phase.lr, unfrozen_blocks=unfrozen)
        data = self._image_data()
        batch_norm = None
        if self.plan.reestimate_batch_norm and self.workers > 1:
            self.notes.append(
                "batch-norm statistics: not re-estimated on a cluster (each worker would "
                "measure its own share); the moving statistics were kept"
            )
        elif self.plan.reestimate_batch_norm:
            estimator = BatchNormEstimator(
                network.backbone, Preprocessing(network.spec.preprocessing)
            )
            batch_norm = partial(estimator.estimate, data.train, self.config.batch_size)
        return self._phase(record, network.classifier, data, phase, batch_norm)

    def _progressive(self) -> None:
        network = self.network
        total = len(block_boundaries(network.backbone, network.spec.blocks))
        best = self.phases[-1].best
        for blocks in range(1, total + 1):
            previous = [w.numpy() for w in network.classifier.weights]
            record = self._tune_phase(f"top{blocks}", blocks=blocks)
            if not record.best < best:
                for variable, value in zip(network.classifier.weights, previous, strict=True):
                    variable.assign(value)
                record.kept = False
                self.notes.append(
                    f"progressive: stopped at {blocks - 1} block(s); unfreezing block {blocks} "
                    "did not improve validation loss"
                )
                break
            best = record.best

    def _phase(
        self,
        record: PhaseRecord,
        model: keras.Model,
        data: PhaseData,
        phase: PhasePlan,
        batch_norm: Callable[[], object] | None = None,
    ) -> PhaseRecord:
        config, run_dir = self.config, self.run_dir
        record.first_epoch = sum(p.epochs_done for p in self.phases)
        board = keras.callbacks.TensorBoard(log_dir=str(run_dir.tensorboard_folder(record.name)))
        folder = run_dir.phase_folder(record.name)
        saved = read_record(folder)
        with self.strategy.scope():
            record = run_phase(
                record,
                model,
                data,
                folder=folder,
                phase=phase,
                plan=self.plan,
                class_weight=self.images.class_weights() if config.class_weights else None,
                batch_norm=batch_norm,
                callbacks=[board, *self.callbacks],
                verbose=_keras_verbosity(self.progress),
                fresh=self.trained_now,  # an earlier phase changed: this one starts again
            )
        if saved is None or saved.to_dict() != record.to_dict():
            self.trained_now = True
        self.phases.append(record)
        return record

    def _image_data(self) -> PhaseData:
        config = self.config
        if self.workers > 1:
            samples = self.images.split("train")
            train, steps = worker_shards(
                self.strategy,
                samples,
                self.network.geometry,
                batch_size=config.batch_size,
                augment=config.augment,
                seed=config.seed,
                class_weights=self.images.class_weights() if config.class_weights else None,
            )
            val = image_dataset(
                self.images.split("val"), self.network.geometry, batch_size=config.batch_size
            )
            return PhaseData(train, val, steps, sharded=True)
        train, val, steps = split_datasets(
            self.images,
            self.network.geometry,
            batch_size=config.batch_size,
            augment=config.augment,
            seed=config.seed,
        )
        return PhaseData(train, val, steps)

    # --- results ------------------------------------------------------------------------

    def evaluate(self) -> dict[str, ClassificationMetrics]:
        """Metrics of the validation and test splits (those that hold images)."""
        network, batch_size = self.network, self.config.batch_size
        results = {}
        for split in ("val", "test"):
            samples = self.images.split(split)
            if not samples:
                continue
            if self.plan.strategy == "head" and self.features is not None:
                # the backbone never changed: its cached features give the same answer
                features = self.features.identity_view(split)
                probabilities = network.head.predict(features, batch_size=batch_size, verbose=0)
            else:
                probabilities = predict(network.classifier, samples, network.geometry, batch_size)
            truth = [s.label for s in samples]
            results[split] = classification_metrics(truth, probabilities, self.images.labels)
        return results

    def write_results(
        self, metrics: dict[str, ClassificationMetrics], seconds: float
    ) -> dict[str, Any]:
        """History, plots, metrics and models into the run folder; the summary last."""
        run_dir, network = self.run_dir, self.network
        history = run_dir.write_history(self.phases)
        run_dir.write_plots(history, self.phases)
        run_dir.write_metrics(metrics)
        trained_backbone = network.backbone if self.plan.strategy != "head" else None
        run_dir.save_models(network.classifier, network.head, trained_backbone)
        summary = {
            "data": self.images.summary(),
            "skipped_files": len(self.images.skipped),
            "feature_cache": (
                {name: s.to_dict() for name, s in self.features.stats.items()}
                if self.features
                else {}
            ),
            "plan": self.plan.to_dict(),
            "phases": [p.summary() for p in self.phases],
            "notes": self.notes,
            "seconds": round(seconds, 1),
            "metrics": {
                split: {
                    "accuracy": m.accuracy,
                    "macro_f1": m.macro_f1,
                    "expected_calibration_error": m.expected_calibration_error,
                }
                for split, m in metrics.items()
            },
        }
        run_dir.write_summary(summary)
        return summary


def _keras_verbosity(progress: bool) -> int:
    """A live progress bar on a terminal, one line per epoch in a log, nothing when quiet.

    Keras writes its progress to standard output.
    """
    if not progress:
        return 0
    return 1 if sys.stdout.isatty() else 2
