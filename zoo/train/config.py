"""Every setting of a fine-tuning run, as one record written to the run directory."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

from zoo.build import LoadRules, ModelFileOptions
from zoo.data import MAX_PIXELS
from zoo.data.targets import TASKS, Task
from zoo.errors import ConfigError

Strategy = Literal["auto", "head", "top", "progressive", "full"]
Optimizer = Literal["adam", "sgd"]
Schedule = Literal["auto", "constant", "cosine"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
#: ``weights`` asking for random initialisation (None asks for the backbone's default).
NO_WEIGHTS: Final = "none"


@dataclass(frozen=True)
class FinetuneConfig:
    """The settings of ``zoo finetune``, as given; None means "the default for the strategy".

    ``strategy`` ``auto`` fine-tunes a pretrained backbone (the head, then the top blocks)
    and trains one without weights from scratch; ``zoo.train.plan`` fills in every None
    from the strategy and records the values used in the run's summary. ``weights`` None
    takes the backbone's default weights, ``"none"`` asks for random initialisation.
    ``epochs`` bounds the first phase (the head, or the whole network from scratch) and
    ``finetune_epochs`` each unfreezing phase. ``task`` is what the head predicts;
    ``targets`` name the catalog columns of a task other than classification
    (``zoo.data.targets``; each task has a default but regression). ``hidden`` None
    takes the task's default head (``Task.default_hidden``); () asks for none.
    """

    backbone: str
    data: str
    out: str
    task: Task = "classify"
    targets: tuple[str, ...] = ()
    weights: str | None = None
    strategy: Strategy = "auto"
    unfreeze: int = 2
    epochs: int | None = None
    finetune_epochs: int | None = None
    batch_size: int = 32
    lr: float | None = None
    finetune_lr: float | None = None
    optimizer: Optimizer = "adam"
    schedule: Schedule = "auto"
    warmup_epochs: int | None = None
    patience: int | None = None
    label_smoothing: float | None = None
    weight_decay: float | None = None
    precise_bn: bool | None = None
    image_size: tuple[int, ...] | None = None
    bands: tuple[str, ...] | None = None
    augment: bool = True
    cache: bool = True
    class_weights: bool = True
    max_pixels: int = MAX_PIXELS
    val_split: float = 0.15
    test_split: float = 0.15
    seed: int = 0
    hidden: tuple[int, ...] | None = None
    dropout: float = 0.2
    mixed_precision: bool | None = None
    model_file: ModelFileOptions = ModelFileOptions()
    load_rules: LoadRules = LoadRules()
    registry_files: tuple[str, ...] = ()
    cluster_timeout: float = 300.0
    resume: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        self._choice("task", TASKS)
        self._choice("strategy", STRATEGIES)
        if self.targets and self.task == "classify":
            raise ConfigError(
                "--targets names catalog columns for --task regress, multilabel or votes; "
                "a classifier reads its classes from the 'label' column or the folders"
            )
        if self.label_smoothing and self.task in ("regress", "votes"):
            raise ConfigError(f"--label-smoothing applies to classes, not to --task {self.task}")
        self._choice("optimizer", OPTIMIZERS)
        self._choice("schedule", SCHEDULES)
        for name in (
            "epochs",
            "finetune_epochs",
            "patience",
            "batch_size",
            "unfreeze",
            "max_pixels",
        ):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ConfigError(f"{_flag(name)} must be at least 1, got {value}")
        if self.warmup_epochs is not None and self.warmup_epochs < 0:
            raise ConfigError(f"--warmup-epochs must be 0 or more, got {self.warmup_epochs}")
        for name in ("lr", "finetune_lr"):
            rate = getattr(self, name)
            if rate is not None and not (math.isfinite(rate) and rate > 0):
                raise ConfigError(f"{_flag(name)} must be a positive number, got {rate}")
        for name, high in (("dropout", 1.0), ("label_smoothing", 1.0), ("weight_decay", 1.0)):
            value = getattr(self, name)
            if value is not None and not 0 <= value < high:
                raise ConfigError(f"{_flag(name)} must be in [0, {high:g}), got {value}")
        if self.image_size is not None and len(self.image_size) not in (1, 2, 3):
            raise ConfigError(f"--image-size takes H, H,W or H,W,C; got {self.image_size}")
        object.__setattr__(self, "data", str(Path(self.data).expanduser().resolve()))

    def _choice(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise ConfigError(f"{_flag(name)} must be one of {', '.join(allowed)}; got {value!r}")

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of setting ``name`` (the CLI shows these)."""
        return cls.__dataclass_fields__[name].default

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (sequences as lists), as config.json records them."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """The config that ``to_dict`` recorded (or an earlier zoo's, whose one
        ``backbone_options`` held both groups of options)."""
        data = dict(data)
        if "backbone_options" in data:
            options = data.pop("backbone_options")
            rules = {k: options.pop(k) for k in ("skip", "rename", "strict") if k in options}
            data.setdefault("model_file", options)
            data.setdefault("load_rules", rules)
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in _SEQUENCES:
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        if isinstance(values.get("model_file"), dict):
            values["model_file"] = ModelFileOptions(**values["model_file"])
        if isinstance(values.get("load_rules"), dict):
            values["load_rules"] = LoadRules(**values["load_rules"])
        return cls(**values)

    def resume_with(self, given: dict[str, Any]) -> FinetuneConfig:
        """This recorded config, to continue its run; ``given`` settings must agree with it.

        Those in RESUMABLE replace the recorded ones; any other that differs is refused
        by name.
        """
        recorded = self.to_dict()
        asked = FinetuneConfig.from_dict({**recorded, **given}).to_dict()
        changed = sorted(k for k in given if k not in self.RESUMABLE and recorded[k] != asked[k])
        if changed:
            differences = ", ".join(
                f"{k} {'by default' if recorded[k] is None else repr(recorded[k])} "
                f"(asked {asked[k]!r})"
                for k in changed
            )
            raise ConfigError(
                f"the run in {self.out} was started with other settings: {differences}; resume "
                "without them to continue with the run's own, or start a new run"
            )
        kept = {k: asked[k] for k in given if k in self.RESUMABLE}
        return FinetuneConfig.from_dict({**recorded, **kept, "resume": True, "force": False})

    # Settings that may differ when a run is resumed (the folder may have moved).
    RESUMABLE = frozenset(
        {"out", "resume", "force", "epochs", "finetune_epochs", "patience", "cluster_timeout"}
    )


_SEQUENCES = ("image_size", "bands", "hidden", "registry_files", "targets")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
