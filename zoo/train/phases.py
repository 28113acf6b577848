"""One training phase (head, top blocks, ...), checkpointed every epoch so it can resume.

A phase owns its optimizer and early stopping. After every epoch it saves the model and
optimizer (a TF checkpoint), the best weights so far and a small JSON state (epochs
done, history, best validation loss, patience used), so an interrupted run continues
exactly where it stopped. When the phase ends, the best weights are restored.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

MONITOR = "val_loss"


@dataclass
class PhaseResult:
    """How a phase went: its history per epoch and the best validation loss it reached."""

    name: str
    history: dict[str, list[float]] = field(default_factory=dict)
    best: float = math.inf
    epochs_done: int = 0
    finished: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_optimizer(name: str, lr: float, schedule: str, steps: int) -> keras.optimizers.Optimizer:
    """Adam or SGD with momentum, at a constant rate or on a cosine decay over the phase."""
    rate: Any = lr
    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps), alpha=0.05)
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)
    return keras.optimizers.Adam(rate)


def run_phase(
    name: str,
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset,
    *,
    folder: Path,
    epochs: int,
    lr: float,
    optimizer: str,
    schedule: str,
    steps_per_epoch: int,
    patience: int,
    class_weight: dict[int, float] | None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
) -> PhaseResult:
    """Train ``model`` for one phase, resuming from ``folder`` if an earlier run stopped in it."""
    folder.mkdir(parents=True, exist_ok=True)
    state = _read_state(folder, name)
    if state.finished:
        model.load_weights(folder / "best.weights.h5")
        return state
    opt = make_optimizer(optimizer, lr, schedule, epochs * steps_per_epoch)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    opt.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=opt)
    manager = tf.train.CheckpointManager(checkpoint, str(folder / "checkpoint"), max_to_keep=1)
    if state.epochs_done and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
    keeper = _PhaseKeeper(state, folder, manager, patience)
    if state.epochs_done < epochs and not keeper.exhausted:
        model.fit(
            train,
            validation_data=val,
            epochs=epochs,
            initial_epoch=state.epochs_done,
            class_weight=class_weight,
            callbacks=[keeper, *callbacks],
            verbose=verbose,
        )
    if (folder / "best.weights.h5").exists():
        model.load_weights(folder / "best.weights.h5")
    state.finished = True
    _write_state(folder, state)
    return state


class _PhaseKeeper(keras.callbacks.Callback):
    """Early stopping on the validation loss, with all of its state saved every epoch."""

    def __init__(
        self, state: PhaseResult, folder: Path, manager: tf.train.CheckpointManager, patience: int
    ):
        super().__init__()
        self.state = state
        self.folder = folder
        self.manager = manager
        self.patience = patience
        self.wait = _wait(state)

    @property
    def exhausted(self) -> bool:
        return self.wait >= self.patience

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        for key, value in logs.items():
            self.state.history.setdefault(key, []).append(float(value))
        self.state.epochs_done = epoch + 1
        current = float(logs.get(MONITOR, math.inf))
        if current < self.state.best:
            self.state.best = current
            self.model.save_weights(self.folder / "best.weights.h5")
        self.wait = _wait(self.state)
        self.manager.save()
        _write_state(self.folder, self.state)
        if self.exhausted:
            self.model.stop_training = True


def _wait(state: PhaseResult) -> int:
    """Epochs since the best validation loss, read from the history (so it survives a resume)."""
    losses = state.history.get(MONITOR, [])
    if not losses:
        return 0
    return len(losses) - 1 - min(range(len(losses)), key=losses.__getitem__)


def _read_state(folder: Path, name: str) -> PhaseResult:
    path = folder / "state.json"
    if not path.exists():
        return PhaseResult(name)
    return PhaseResult(**json.loads(path.read_text()))


def _write_state(folder: Path, state: PhaseResult) -> None:
    temporary = folder / "state.json.tmp"
    temporary.write_text(json.dumps(state.to_dict(), indent=1))
    os.replace(temporary, folder / "state.json")
