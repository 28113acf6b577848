"""The run directory: every file a fine-tuning run leaves behind, by name, written safely.

::

    RUN/
      .zoo-run                  written first: marks the folder as a zoo run
      config.json               every setting, library versions, the split's hashes, load report
      labels.txt                class names in the model's output order, one per line
      checkpoints/<phase>/      per-epoch checkpoint, best weights and phase record (resume)
      tensorboard/<phase>/      TensorBoard logs
      history.json              phase records and the per-epoch history of the whole run
      model.keras               the classifier, preprocessing included, with the best weights
      head.weights.h5           the head alone
      backbone.weights.h5       the backbone, when it trained (reusable as --weights)
      metrics_<split>.json      the task's scores (accuracy, per-class scores, confusion,
                                calibration; RMSE, R²; per-label F1; vote-fraction errors)
      metrics.txt               the same as text
      learning_curves.png, confusion_<split>.png (classes) or predicted_<split>.png
      summary.json              written last: the run is finished
      evaluations/<name>/       what ``zoo evaluate`` wrote

A new run is assembled in a hidden folder beside RUN and renamed into place once its
config is written, so ``--force`` never removes the old run before the new one has
started, and only ever replaces a folder that holds a zoo run. Each file is written
atomically (``zoo.fs``); one process at a time holds the folder (``zoo.locks``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import RunDirError
from zoo.fs import (
    atomic_directory,
    atomic_file,
    read_json,
    remove_temporaries,
    write_json,
    write_text,
)
from zoo.locks import FolderLock

if TYPE_CHECKING:
    import keras

    from zoo.data.images import ImageGeometry
    from zoo.tasks import Task, TaskMetrics
    from zoo.train.phases import PhaseRecord

MARKER = ".zoo-run"
CONFIG = "config.json"
LABELS = "labels.txt"
HISTORY = "history.json"
MODEL = "model.keras"
HEAD_WEIGHTS = "head.weights.h5"
BACKBONE_WEIGHTS = "backbone.weights.h5"
METRICS_TEXT = "metrics.txt"
LEARNING_CURVES = "learning_curves.png"
SUMMARY = "summary.json"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
EVALUATIONS = "evaluations"


def metrics_file(split: str) -> str:
    return f"metrics_{split}.json"


class RunDir:
    """One run folder, held by this process: where each file goes, and writing it."""

    def __init__(self, path: str | Path, *, new: bool, force: bool = False) -> None:
        """A folder for a ``new`` run (replacing an old run with ``force``), or an existing run.

        Entering the context takes the folder's lock and checks it; nothing is written
        yet: a new run's folder appears at ``begin``.
        """
        self.path = Path(path).expanduser()
        self.new = new
        self.force = force
        self.lock = FolderLock(self.path)

    def __enter__(self) -> RunDir:
        self.lock.acquire()
        try:
            self._check()
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()

    def _check(self) -> None:
        if not self.new:
            if not (self.path / CONFIG).is_file():
                raise RunDirError(
                    f"{self.path} holds no zoo run (no {CONFIG}); start one with "
                    f"`zoo finetune BACKBONE DATA --out {self.path}`"
                )
            remove_temporaries(self.path)  # what a killed writer left half-written
            return
        if not _occupied(self.path):
            return
        if not self.force:
            raise RunDirError(
                f"{self.path} already holds files; use --resume to continue that run or --force "
                "to replace it"
            )
        if not (self.path / MARKER).is_file():
            raise RunDirError(
                f"{self.path} holds files that are not a zoo run (no {MARKER}); --force replaces "
                "only run folders: choose another --out"
            )

    def protect(self, data: str | Path) -> None:
        """Refuse a run folder that would hold or replace the data set ``data``."""
        run = self.path.resolve()
        data = Path(data).expanduser().resolve()
        root = data.parent if data.is_file() else data
        if run == root or run in data.parents:
            raise RunDirError(
                f"--out {self.path} holds the data {data}; choose a run folder outside it"
            )
        if data.is_dir() and root in run.parents:
            raise RunDirError(
                f"--out {self.path} is inside the data folder {data}, where it would be read as "
                "a class; choose a run folder outside it"
            )

    def begin(self, config: dict[str, Any], labels: Sequence[str]) -> None:
        """Write the marker, config and labels of a new run, and put the folder in place.

        The old run (with ``force``) is replaced only now, once the new one has started.
        An existing run writes nothing here: it keeps the config it started with.
        """
        if not self.new:
            return
        self._check()  # nothing else may have appeared since the folder was taken
        with atomic_directory(self.path, replace=self.force) as staging:
            write_text(staging / MARKER, "a zoo fine-tuning run; see config.json\n")
            write_json(staging / CONFIG, config)
            write_text(staging / LABELS, "".join(f"{label}\n" for label in labels))

    # --- files ------------------------------------------------------------------------

    def read_config(self) -> dict[str, Any]:
        return read_json(self.path / CONFIG)

    def phase_folder(self, phase: str) -> Path:
        return self.path / CHECKPOINTS / phase

    def tensorboard_folder(self, phase: str) -> Path:
        return self.path / TENSORBOARD / phase

    def write_history(self, phases: Sequence[PhaseRecord]) -> dict[str, list[float]]:
        """The phase records and the per-epoch history they make together; returns the latter."""
        merged: dict[str, list[float]] = {}
        for phase in phases:
            for key, values in phase.history.items():
                merged.setdefault(key, []).extend(values)
        write_json(self.path / HISTORY, {"phases": [p.to_dict() for p in phases], "epochs": merged})
        return merged

    def write_plots(self, history: dict[str, list[float]], phases: Sequence[PhaseRecord]) -> None:
        from zoo.train.plots import plot_learning_curves

        starts = [(p.name, p.first_epoch + 1) for p in phases]
        plot_learning_curves(history, self.path / LEARNING_CURVES, phases=starts)

    def write_metrics(self, metrics: dict[str, TaskMetrics]) -> None:
        """Each split's metrics as JSON and its plot, and all of them as text."""
        text = []
        for split, result in metrics.items():
            write_json(self.path / metrics_file(split), result.to_dict())
            result.plot(self.path, split)
            text += [f"== {split} ==", *result.lines(), ""]
        write_text(self.path / METRICS_TEXT, "\n".join(text))

    def save_models(
        self, classifier: keras.Model, head: keras.Model, backbone: keras.Model | None
    ) -> None:
        """The classifier (best weights, preprocessing included), the head, the backbone."""
        saves = [(MODEL, classifier.save), (HEAD_WEIGHTS, head.save_weights)]
        if backbone is not None:
            saves.append((BACKBONE_WEIGHTS, backbone.save_weights))
        for name, save in saves:
            with atomic_file(self.path / name) as partial:
                save(partial)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.path / SUMMARY, summary)

    def evaluation_folder(self, name: str) -> Path:
        """``evaluations/<name>``; a name that would lead outside it is refused."""
        if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
            raise RunDirError(
                f"evaluation name {name!r} must be a plain folder name (no '/', '..' or drive)"
            )
        return self.path / EVALUATIONS / name


@dataclass
class Run:
    """A fine-tuning run: where it is, its settings and labels, how it went, and its model."""

    path: Path
    config: dict[str, Any]
    labels: tuple[str, ...]
    phases: list[PhaseRecord]
    metrics: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    model: keras.Model

    @property
    def task(self) -> Task:
        """What the model predicts, as the run recorded it."""
        from zoo.tasks import task_from_record

        return task_from_record(self.config.get("task"), self.labels)

    @property
    def geometry(self) -> ImageGeometry:
        """How the model reads image files: size, channels, bands."""
        from zoo.data.images import ImageGeometry

        *size, channels = self.config["input_shape"]
        bands = self.config["settings"]["bands"]
        return ImageGeometry(tuple(size), channels, tuple(bands) if bands else None)


def load_run(path: str | Path) -> Run:
    """A finished run read back: its model (with its custom layers), labels, config, metrics."""
    import keras

    from zoo.train.phases import PhaseRecord

    run = Path(path).expanduser()
    if not (run / SUMMARY).is_file() or not (run / MODEL).is_file():
        raise RunDirError(
            f"{run} is not a finished run (no {SUMMARY} and {MODEL}); finish it with "
            "`zoo finetune ... --resume`"
        )
    config = read_json(run / CONFIG)
    import_layer_modules(config.get("model_modules", ()))
    model = keras.saving.load_model(run / MODEL, compile=False, safe_mode=_safe_mode(config))
    history = read_json(run / HISTORY)
    metrics = {
        split: read_json(run / metrics_file(split))
        for split in ("val", "test")
        if (run / metrics_file(split)).is_file()
    }
    return Run(
        path=run,
        config=config,
        labels=tuple(config["labels"]),
        phases=[PhaseRecord.from_dict(p) for p in history["phases"]],
        metrics=metrics,
        summary=read_json(run / SUMMARY),
        model=model,
    )


def import_layer_modules(modules: Sequence[str]) -> None:
    """Import zoo's preprocessing and losses (a saved head may name its loss) and the
    modules where a backbone's custom layers register."""
    for module in ("zoo.preprocessing", "zoo.train.loss", "zoo.tasks.losses", *modules):
        try:
            importlib.import_module(module)
        except ImportError:
            continue  # loading the model then names the layer it cannot find


def _safe_mode(config: dict[str, Any]) -> bool:
    """Keras's safe mode, off only where training already trusted the backbone's code: a
    SavedModel backbone (wrapped in a TFSMLayer) or a model file loaded with --unsafe."""
    from zoo.sources import source_kind
    from zoo.spec import MODEL_FILE_BUILDER

    backbone = config["backbone"]
    if backbone["build"] != MODEL_FILE_BUILDER:
        return True
    source = backbone["build_options"].get("source", "")
    from zoo.train.config import FinetuneConfig

    settings = FinetuneConfig.from_dict(config["settings"])
    unsafe = not settings.model_file.safe_mode
    return not (unsafe or source_kind(source) == "savedmodel")


def _occupied(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))
