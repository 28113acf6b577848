"""One training phase (head, top blocks, ...), checkpointed every epoch so it can resume.

A phase owns its optimizer and early stopping. After every epoch it saves the model and
optimizer (a TF checkpoint numbered by the epoch), the best weights so far and its
record (epochs done, history, best validation loss), in that order and each file
atomically; the record is written last and names the checkpoint it goes with, so a run
killed at any moment resumes from a consistent epoch. When the phase ends, the best
weights are restored.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from zoo.errors import TrainingError
from zoo.fs import atomic_file, read_json, write_json
from zoo.tasks import Task
from zoo.train.plan import PhasePlan, Plan

MONITOR = "val_loss"
STATE = "state.json"
BEST_WEIGHTS = "best.weights.h5"
CHECKPOINTS = "checkpoint"


@dataclass
class PhaseRecord:
    """What a phase is and how it went: settings, history per epoch, best validation loss.

    ``first_epoch`` counts the epochs of the phases before it (for plots);
    ``unfrozen_blocks`` is None while the backbone is frozen; ``kept`` is False when a
    progressive phase did not improve and its weights were rolled back.
    """

    name: str
    lr: float
    first_epoch: int = 0
    unfrozen_blocks: int | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    best: float = math.inf
    epochs_done: int = 0
    finished: bool = False
    kept: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The record without its per-epoch history, for the run summary."""
        return {k: v for k, v in self.to_dict().items() if k != "history"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhaseRecord:
        return cls(**data)


@dataclass(frozen=True)
class PhaseData:
    """What a phase trains on: training and validation batches, and steps per epoch.

    ``sharded``: ``train`` is a cluster's distributed dataset, each worker's share of the
    files repeated without end, with the class weights inside as sample weights.
    """

    train: Any
    val: tf.data.Dataset
    steps: int
    sharded: bool = False


def make_optimizer(
    name: str, phase: PhasePlan, steps_per_epoch: int, weight_decay: float
) -> keras.optimizers.Optimizer:
    """Adam or SGD with momentum; a constant rate, or a linear warm-up then a cosine decay.

    Weight decay is decoupled from the gradient (AdamW's) and spares biases and
    batch-norm scales and offsets.
    """
    rate: Any = phase.lr
    if phase.schedule == "cosine":
        total = max(1, phase.epochs * steps_per_epoch)
        warmup = phase.warmup_epochs * steps_per_epoch
        rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else phase.lr,
            decay_steps=max(1, total - warmup),
            alpha=0.05,
            warmup_target=phase.lr if warmup else None,
            warmup_steps=warmup,
        )
    decay = weight_decay or None
    if name == "sgd":
        optimizer = keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, weight_decay=decay)
    else:
        optimizer = keras.optimizers.Adam(rate, weight_decay=decay)
    if decay:
        optimizer.exclude_from_weight_decay(var_names=["bias", "beta", "gamma"])
    return optimizer


def run_phase(
    record: PhaseRecord,
    model: keras.Model,
    data: PhaseData,
    *,
    folder: Path,
    phase: PhasePlan,
    plan: Plan,
    task: Task,
    class_weight: dict[int, float] | None,
    batch_norm: Callable[[], object] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
    fresh: bool = False,
) -> PhaseRecord:
    """Train ``model`` for one phase, resuming from ``folder`` if an earlier run stopped in it.

    ``record`` names the phase and its learning rate; the returned record is the one
    saved in ``folder`` (the earlier run's, continued, when resuming). A finished phase
    is continued only when it ran out of epochs, not patience, and ``phase.epochs`` now
    allows more (``--resume --epochs N`` extends a run). ``fresh`` discards what an
    earlier run saved here (an earlier phase has changed since). ``batch_norm``, when
    given, re-estimates batch-norm statistics before each validation.
    """
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = read_record(folder) or record
    if record.finished and not _may_continue(record, phase):
        model.load_weights(folder / BEST_WEIGHTS)
        return record
    record.finished = False
    opt = make_optimizer(plan.optimizer, phase, data.steps, plan.weight_decay)
    model.compile(
        optimizer=opt,
        loss=task.loss(plan.label_smoothing),
        metrics=task.metrics(),
    )
    opt.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=opt)
    manager = tf.train.CheckpointManager(checkpoint, str(folder / CHECKPOINTS), max_to_keep=2)
    if record.epochs_done:
        checkpoint.restore(_checkpoint_of(manager, record.epochs_done)).expect_partial()
    keeper = _PhaseKeeper(record, folder, manager, phase)
    if record.epochs_done < phase.epochs and not keeper.exhausted:
        model.fit(
            data.train,
            epochs=phase.epochs,
            initial_epoch=record.epochs_done,
            steps_per_epoch=data.steps if data.sharded else None,
            class_weight=None if data.sharded else class_weight,
            callbacks=[
                _Validator(data.val, batch_norm),
                _StopOnNonFiniteLoss(record),
                keeper,
                *callbacks,
            ],
            shuffle=False,  # the datasets shuffle themselves
            verbose=verbose,
        )
    if (folder / BEST_WEIGHTS).exists():
        model.load_weights(folder / BEST_WEIGHTS)
    record.finished = True
    write_json(folder / STATE, record.to_dict())
    return record


def read_record(folder: Path) -> PhaseRecord | None:
    """The record a phase saved in ``folder``, or None if it never finished an epoch."""
    path = folder / STATE
    return PhaseRecord.from_dict(read_json(path)) if path.exists() else None


def _checkpoint_of(manager: tf.train.CheckpointManager, epoch: int) -> str:
    """The checkpoint saved at the end of ``epoch`` (its number), which the record trusts."""
    for path in manager.checkpoints:
        if path.endswith(f"-{epoch}"):
            return path
    raise FileNotFoundError(
        f"no checkpoint of epoch {epoch} in {manager.directory}; the run folder was changed "
        "by hand: start the run again"
    )


class _Validator(keras.callbacks.Callback):
    """Validation at the end of each epoch, after batch-norm statistics are re-estimated.

    Keras's own validation runs before any callback could update the statistics; this
    one adds ``val_loss`` and ``val_accuracy`` to the epoch's logs for those that follow.
    """

    def __init__(self, val: tf.data.Dataset, batch_norm: Callable[[], object] | None) -> None:
        super().__init__()
        self.val = val
        self.batch_norm = batch_norm

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if self.batch_norm is not None:
            self.batch_norm()
        scores = self.model.evaluate(self.val, verbose=0, return_dict=True)
        if logs is not None:
            logs.update({f"val_{name}": float(value) for name, value in scores.items()})


class _StopOnNonFiniteLoss(keras.callbacks.Callback):
    """A NaN or infinite loss ends the run at once, with what to change."""

    def __init__(self, record: PhaseRecord) -> None:
        super().__init__()
        self.record = record
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        self._check((logs or {}).get("loss", 0.0), f"batch {batch + 1}")

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._check((logs or {}).get(MONITOR, 0.0), "validation")

    def _check(self, loss: float, where: str) -> None:
        if not math.isfinite(float(loss)):
            raise TrainingError(
                f"the loss became {float(loss)} in phase '{self.record.name}' (epoch "
                f"{self.epoch + 1}, {where}) at learning rate {self.record.lr:g}; lower --lr "
                "(or --finetune-lr), or look for extreme pixel values in the data"
            )


class _PhaseKeeper(keras.callbacks.Callback):
    """Early stopping on the validation loss, with all of its state saved every epoch."""

    def __init__(
        self,
        record: PhaseRecord,
        folder: Path,
        manager: tf.train.CheckpointManager,
        phase: PhasePlan,
    ) -> None:
        super().__init__()
        self.record = record
        self.folder = folder
        self.manager = manager
        self.phase = phase

    @property
    def exhausted(self) -> bool:
        return _patience_ran_out(self.record, self.phase)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        record = self.record
        for key, value in logs.items():
            record.history.setdefault(key, []).append(float(value))
        record.epochs_done = epoch + 1
        current = float(logs.get(MONITOR, math.inf))
        if current < record.best:
            record.best = current
            with atomic_file(self.folder / BEST_WEIGHTS) as partial:
                self.model.save_weights(partial)
        self.manager.save(checkpoint_number=record.epochs_done)
        write_json(self.folder / STATE, record.to_dict())  # last: it vouches for the rest
        if self.exhausted:
            self.model.stop_training = True


def _patience_ran_out(record: PhaseRecord, phase: PhasePlan) -> bool:
    """Early stopping's verdict (never during the warm-up, when the rate is still rising)."""
    if record.epochs_done <= phase.warmup_epochs:
        return False
    return _epochs_since_best(record) >= phase.patience


def _may_continue(record: PhaseRecord, phase: PhasePlan) -> bool:
    return record.epochs_done < phase.epochs and not _patience_ran_out(record, phase)


def _epochs_since_best(record: PhaseRecord) -> int:
    """Epochs since the best validation loss, read from the history (so it survives a resume)."""
    losses = record.history.get(MONITOR, [])
    if not losses:
        return 0
    return len(losses) - 1 - min(range(len(losses)), key=losses.__getitem__)
