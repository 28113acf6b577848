"""The phases of one run, its evaluation and its results (``zoo.train.finetune`` sets
them up): the head, then the blocks the plan unfreezes; each phase checkpointed."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import keras

from zoo.data.dataset import ImageSet, target_array
from zoo.data.pipeline import image_dataset, split_datasets, worker_shards
from zoo.errors import TrainingWarning
from zoo.preprocessing import Preprocessing
from zoo.tasks import TaskMetrics
from zoo.train.batch_norm import BatchNormEstimator
from zoo.train.config import FinetuneConfig
from zoo.train.evaluate import predict
from zoo.train.feature_cache import SplitFeatures, split_features
from zoo.train.model import Network, block_boundaries, build_encoder, set_trainable_top
from zoo.train.phases import PhaseData, PhaseRecord, read_record, run_phase
from zoo.train.plan import PhasePlan, Plan
from zoo.train.rundir import RunDir
from zoo.train.workers import Workers


class Trainer:
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
        workers: Workers,
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
        self.head_kept = False  # unfreezing did not beat the head: the head's model is kept
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
            self._tune_unless_worse(f"top{plan.unfreeze}", plan.unfreeze)
        elif plan.strategy == "full" and plan.head is not None:
            self._tune_unless_worse("full", None)
        elif plan.strategy == "full":  # from scratch: one phase, nothing to compare with
            self._tune_phase("full", blocks=None)
        elif plan.strategy == "progressive":
            self._progressive()

    def _tune_unless_worse(self, name: str, blocks: int | None) -> None:
        """Fine-tune after the head; the run keeps the best model over its phases, so when
        the unfrozen blocks never beat the head's best validation loss, the head's model
        is restored, saved and reported."""
        head = self.phases[-1].best
        record = self._tune_if_better(name, blocks, head)
        if not record.kept:
            self.notes.append(
                f"{name}: fine-tuning never beat the head on validation (loss {record.best:.4f} "
                f"against {head:.4f}); the head's model is kept"
            )

    def _tune_if_better(self, name: str, blocks: int | None, best: float) -> PhaseRecord:
        """A fine-tuning phase, undone (``kept`` False) unless it beats ``best``."""
        previous = [w.numpy() for w in self.network.classifier.weights]
        record = self._tune_phase(name, blocks=blocks)
        if not record.best < best:
            for variable, value in zip(self.network.classifier.weights, previous, strict=True):
                variable.assign(value)
            record.kept = False
            self.head_kept = all(not p.kept for p in self.phases[1:])
        return record

    def _head_phase(self, phase: PhasePlan) -> None:
        config, network = self.config, self.network
        network.backbone.trainable = False
        cache, note = self.workers.feature_cache(config.cache)
        if note:
            self.notes.append(note)
        if cache:  # the head alone, on cached features
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
        unfrozen = set_trainable_top(
            network.backbone, network.spec.blocks, blocks, keep_batch_norm=network.pretrained
        )
        record = PhaseRecord(name, phase.lr, unfrozen_blocks=unfrozen)
        data = self._image_data()
        batch_norm = None
        estimate, note = self.workers.batch_norm_estimate(self.plan.reestimate_batch_norm)
        if note:
            self.notes.append(note)
        if estimate:
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
            record = self._tune_if_better(f"top{blocks}", blocks, best)
            if not record.kept:
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
                task=self.network.task,
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
        if self.workers.shares_files():
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

    def evaluate(self) -> dict[str, TaskMetrics]:
        """Metrics of the validation and test splits (those that hold images); the test
        split is scored with what validation chose (multi-label thresholds)."""
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
            results[split] = network.task.score(
                target_array(samples), probabilities, results["val"].to_dict() if results else None
            )
        return results

    def write_results(self, metrics: dict[str, TaskMetrics], seconds: float) -> dict[str, Any]:
        """History, plots, metrics and models into the run folder; the summary last."""
        run_dir, network = self.run_dir, self.network
        history = run_dir.write_history(self.phases)
        run_dir.write_plots(history, self.phases)
        run_dir.write_metrics(metrics)
        trained = self.plan.strategy != "head" and not self.head_kept
        trained_backbone = network.backbone if trained else None
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
            "task": network.task.name,
            "metrics": {split: m.headline() for split, m in metrics.items()},
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
