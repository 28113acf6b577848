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

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.catalog import SOURCE_BUILDER
from zoo.errors import ZooError
from zoo.train import rundir
from zoo.train.config import ConfigError, FinetuneConfig


class Interrupted(ZooError):
    """Training was interrupted; the run can be resumed."""


@dataclass
class Run:
    """The outcome of a fine-tuning run, and where its files are."""

    path: Path
    labels: tuple[str, ...]
    model: Any
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    summary: dict[str, Any]


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
    whole ``config``. ``callbacks`` are extra Keras callbacks for every phase.
    """
    if config is None:
        if backbone is None or data is None or out is None:
            raise ConfigError("finetune needs a backbone, a data set and an output folder")
        config = FinetuneConfig(str(backbone), str(data), str(out), **settings)
    try:
        return _Trainer(config, list(callbacks), progress).run()
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; the run in {config.out} was checkpointed after its last full epoch: "
            "continue it with --resume (resume=True)"
        ) from None


class _Trainer:
    """One run, step by step; each method is one stage of the recipe."""

    def __init__(self, config: FinetuneConfig, callbacks: list[Any], progress: bool) -> None:
        self.config = config
        self.callbacks = callbacks
        self.progress = progress
        self.run_dir = rundir.prepare(config.out, resume=config.resume, force=config.force)
        self.phases: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.cache_stats: dict[str, dict[str, Any]] = {}
        self.encoder: Any = None
        self.eval_features: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def run(self) -> Run:
        import keras

        from zoo.train.distribute import choose_strategy, set_precision

        started = time.time()
        self._check_resume()
        keras.utils.set_random_seed(self.config.seed)
        self.policy = set_precision(self.config.mixed_precision)
        self.strategy, self.strategy_name = choose_strategy()
        self._load_data()
        with self.strategy.scope():
            self._build_model()
        self._write_config()
        self._train()
        metrics = self._evaluate()
        summary = self._write_results(metrics, time.time() - started)
        scores = {split: m.to_dict() for split, m in metrics.items()}
        return Run(self.run_dir, self.images.labels, self.classifier, self.phases, scores, summary)

    # --- set-up -------------------------------------------------------------------------

    def _check_resume(self) -> None:
        if not self.config.resume:
            return
        saved = rundir.read_json(self.run_dir / rundir.CONFIG)["settings"]
        current = self.config.to_dict()
        changed = sorted(
            k for k in current if k not in FinetuneConfig.RESUMABLE and saved.get(k) != current[k]
        )
        if changed:
            raise ConfigError(
                f"{self.run_dir} was started with other settings ({', '.join(changed)}); "
                "resume it with the same ones, or start a new run"
            )

    def _load_data(self) -> None:
        from zoo.data.dataset import load_image_set

        config = self.config
        self.images = load_image_set(
            config.data,
            val_split=config.val_split,
            test_split=config.test_split,
            bands=config.bands,
        )

    def _build_model(self) -> None:
        import zoo
        from zoo.train.model import build_classifier, build_head

        config = self.config
        registry = (
            zoo.load_registry(config.registry_files)
            if config.registry_files
            else zoo.get_registry()
        )
        spec = registry.get(config.backbone) if not Path(config.backbone).exists() else None
        self.backbone = zoo.create_backbone(
            config.backbone,
            weights=config.weights,
            input_shape=self._input_shape(spec),
            registry=registry,
            progress=self.progress,
            **config.backbone_options,
        )
        self.spec = self.backbone.backbone_spec
        self.pretrained = (
            config.weights is not None
            or self.backbone.load_report is not None
            or self.spec.build_path == SOURCE_BUILDER  # a saved model carries its weights
        )
        if not self.pretrained and config.strategy == "head":
            self.notes.append("random backbone weights with --strategy head: only the head learns")
            warnings.warn(
                "training only a head on a randomly initialised backbone; pass --weights, or "
                "use --strategy full to train the whole network",
                UserWarning,
                stacklevel=2,
            )
        self.size = tuple(int(d) for d in self.backbone.inputs[0].shape[1:3])
        self.channels = int(self.backbone.inputs[0].shape[-1])
        feature_dim = int(self.backbone.outputs[0].shape[-1])
        self.head = build_head(
            feature_dim, len(self.images.labels), hidden=config.hidden, dropout=config.dropout
        )
        self.classifier = build_classifier(
            self.backbone, self.head, self.spec.preprocessing, pretrained=self.pretrained
        )

    def _input_shape(self, spec: Any) -> tuple[int, ...] | None:
        size = self.config.image_size
        channels = len(self.config.bands) if self.config.bands else self.images.channels
        if size is None:
            if spec is None:
                return None
            return (*spec.input_shape[:2], channels)
        if len(size) == 1:
            return (size[0], size[0], channels)
        if len(size) == 2:
            return (*size, channels)
        return tuple(size)

    def _write_config(self) -> None:
        report = self.backbone.load_report
        rundir.write_json(
            self.run_dir / rundir.CONFIG,
            {
                "settings": self.config.to_dict(),
                "versions": rundir.versions(),
                "backbone": self.spec.to_dict(),
                "input_shape": [*self.size, self.channels],
                "labels": list(self.images.labels),
                "data": self.images.summary(),
                "load_report": report.to_dict() if report else None,
                "strategy": self.strategy_name,
                "precision": self.policy,
            },
        )
        rundir.write_text(self.run_dir / "labels.txt", "\n".join(self.images.labels) + "\n")

    # --- training -----------------------------------------------------------------------

    def _train(self) -> None:
        config = self.config
        pretrained = self.pretrained
        if config.strategy != "full" or pretrained:
            self._head_phase()
        if config.strategy == "top":
            self._tune_phase(f"top{config.unfreeze}", blocks=config.unfreeze)
        elif config.strategy == "full":
            self._tune_phase("full", blocks=None, lr=config.tune_lr if pretrained else config.lr)
        elif config.strategy == "progressive":
            self._progressive()

    def _head_phase(self) -> None:
        self.backbone.trainable = False
        if self.config.cache:  # the head alone, on cached features
            model, (train, val, steps) = self.head, self._feature_datasets()
        else:
            model, (train, val, steps) = self.classifier, self._image_datasets()
        self._phase("head", model, train, val, steps, self.config.lr, self.config.epochs)

    def _tune_phase(self, name: str, blocks: int | None, lr: float | None = None) -> float:
        from zoo.train.model import set_trainable_top

        unfrozen = set_trainable_top(self.backbone, self.spec.blocks, blocks)
        train, val, steps = self._image_datasets()
        result = self._phase(
            name,
            self.classifier,
            train,
            val,
            steps,
            lr or self.config.tune_lr,
            self.config.tune_epochs,
        )
        self.phases[-1]["unfrozen_blocks"] = unfrozen
        return result

    def _progressive(self) -> None:
        from zoo.train.model import block_boundaries

        total = len(block_boundaries(self.backbone, self.spec.blocks))
        if not total:
            raise ConfigError(
                f"backbone '{self.spec.name}' declares no blocks; use --strategy head or full"
            )
        best = self.phases[-1]["best"]
        for blocks in range(1, total + 1):
            previous = [w.numpy() for w in self.classifier.weights]
            score = self._tune_phase(f"top{blocks}", blocks=blocks)
            if not score < best:
                for variable, value in zip(self.classifier.weights, previous, strict=True):
                    variable.assign(value)
                self.notes.append(
                    f"progressive: stopped at {blocks - 1} block(s); unfreezing block {blocks} did not improve validation loss"
                )
                self.phases[-1]["kept"] = False
                break
            best = score

    def _phase(
        self, name: str, model: Any, train: Any, val: Any, steps: int, lr: float, epochs: int
    ) -> float:
        import keras

        from zoo.train.phases import run_phase

        folder = self.run_dir / "checkpoints" / name
        board = keras.callbacks.TensorBoard(log_dir=str(self.run_dir / "tensorboard" / name))
        with self.strategy.scope():
            result = run_phase(
                name,
                model,
                train,
                val,
                folder=folder,
                epochs=epochs,
                lr=lr,
                optimizer=self.config.optimizer,
                schedule=self.config.schedule,
                steps_per_epoch=steps,
                patience=self.config.patience,
                class_weight=self.images.class_weights() if self.config.class_weights else None,
                callbacks=[board, *self.callbacks],
                verbose=1 if self.progress else 2,
            )
        first = sum(len(p["history"].get("loss", [])) for p in self.phases)
        self.phases.append(
            {
                "name": name,
                "first_epoch": first,
                "lr": lr,
                "best": result.best,
                "epochs": result.epochs_done,
                "history": result.history,
            }
        )
        return result.best

    # --- data for the phases ------------------------------------------------------------

    def _image_datasets(self) -> tuple[Any, Any, int]:
        from zoo.data.pipeline import image_dataset

        common = {
            "size": self.size,
            "channels": self.channels,
            "bands": self.config.bands,
            "batch_size": self.config.batch_size,
        }
        train_samples = self.images.split("train")
        train = image_dataset(
            train_samples,
            shuffle=True,
            augment=self.config.augment,
            seed=self.config.seed,
            **common,
        )
        val = image_dataset(self.images.split("val"), **common)
        return train, val, math.ceil(len(train_samples) / self.config.batch_size)

    def _feature_datasets(self) -> tuple[Any, Any, int]:
        import tensorflow as tf

        if self.config.augment:  # 8 views for training, one for evaluation
            features = self._features(("train",), views=8) | self._features(
                ("val", "test"), views=1
            )
        else:  # one pass over every image
            features = self._features(("train", "val", "test"), views=1)
        self.eval_features = features
        (train_x, train_y), (val_x, val_y) = features["train"], features["val"]
        seed = self.config.seed

        def one_view(stack: Any, label: Any) -> tuple[Any, Any]:
            view = tf.random.uniform((), 0, tf.shape(stack)[0], dtype=tf.int32, seed=seed)
            return stack[view], label

        train = (
            tf.data.Dataset.from_tensor_slices((train_x, train_y))
            .shuffle(len(train_y), seed=seed, reshuffle_each_iteration=True)
            .map(one_view, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(self.config.batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        val = tf.data.Dataset.from_tensor_slices((val_x[:, 0], val_y)).batch(self.config.batch_size)
        return train, val, math.ceil(len(train_y) / self.config.batch_size)

    def _features(
        self, splits: tuple[str, ...], views: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Cached features and labels of the given splits, computed in one pass."""
        from zoo.train.feature_cache import cached_features, features_key, weights_digest
        from zoo.train.model import build_encoder

        if self.encoder is None:  # the backbone is frozen while features are cached
            self.encoder = build_encoder(self.backbone, self.spec.preprocessing)
            self.weights_digest = weights_digest(self.backbone)
        groups = {split: self.images.split(split) for split in splits}
        samples = [sample for group in groups.values() for sample in group]
        key = features_key(
            self.weights_digest,
            self.spec.preprocessing,
            self.size,
            self.channels,
            self.config.bands,
            views,
        )
        features, stats = cached_features(
            self.encoder,
            samples,
            key=key,
            size=self.size,
            channels=self.channels,
            bands=self.config.bands,
            views=views,
            batch_size=self.config.batch_size,
            progress=self.progress,
        )
        self.cache_stats["+".join(splits)] = {
            "key": stats.key,
            "reused": stats.reused,
            "computed": stats.computed,
            "stored_views": stats.views,
        }
        result, start = {}, 0
        for split, group in groups.items():
            labels = np.array([s.label for s in group], dtype="int32")
            result[split] = (features[start : start + len(group)], labels)
            start += len(group)
        return result

    # --- results ------------------------------------------------------------------------

    def _evaluate(self) -> dict[str, Any]:
        from zoo.train.evaluate import predict
        from zoo.train.metrics import classification_metrics

        results = {}
        for split in ("val", "test"):
            samples = self.images.split(split)
            if not samples:
                continue
            if self.config.strategy == "head" and self.config.cache:
                # the backbone never changed: its cached features give the same answer
                features, _ = self.eval_features[split]
                probabilities = self.head.predict(
                    features[:, 0], batch_size=self.config.batch_size, verbose=0
                )
            else:
                probabilities = predict(
                    self.classifier,
                    samples,
                    self.size,
                    self.channels,
                    self.config.bands,
                    self.config.batch_size,
                )
            truth = [s.label for s in samples]
            results[split] = classification_metrics(truth, probabilities, self.images.labels)
        return results

    def _write_results(self, metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
        from zoo.train.plots import plot_confusion_matrix, plot_learning_curves

        run = self.run_dir
        merged: dict[str, list[float]] = {}
        for phase in self.phases:
            for key, values in phase["history"].items():
                merged.setdefault(key, []).extend(values)
        rundir.write_json(run / "history.json", {"phases": self.phases, "epochs": merged})
        plot_learning_curves(
            merged,
            run / "learning_curves.png",
            phases=[(p["name"], p["first_epoch"] + 1) for p in self.phases],
        )
        text = []
        for split, result in metrics.items():
            rundir.write_json(run / f"metrics_{split}.json", result.to_dict())
            plot_confusion_matrix(result.confusion, result.labels, run / f"confusion_{split}.png")
            text += [f"== {split} ==", *result.lines(), ""]
        rundir.write_text(run / "metrics.txt", "\n".join(text))
        self.classifier.save(run / "model.keras")  # the best weights, preprocessing included
        self.head.save_weights(run / "head.weights.h5")
        if self.config.strategy != "head":  # a trained backbone, reusable as --weights
            self.backbone.save_weights(run / "backbone.weights.h5")
        summary = {
            "data": self.images.summary(),
            "skipped_files": len(self.images.skipped),
            "feature_cache": self.cache_stats,
            "phases": [{k: v for k, v in p.items() if k != "history"} for p in self.phases],
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
        rundir.write_json(run / "summary.json", summary)
        return summary
