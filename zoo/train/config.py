"""Every setting of a fine-tuning run, as one record written to the run directory."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.data import MAX_PIXELS
from zoo.errors import ConfigError

STRATEGIES = ("head", "top", "progressive", "full")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class FinetuneConfig:
    """The settings of ``zoo finetune``; defaults follow the transfer-learning recipe.

    ``epochs`` bounds the head phase and ``finetune_epochs`` each unfreezing phase
    (default: ``epochs``); ``finetune_lr`` (default ``lr / 10``) is the small rate for
    unfrozen blocks. Both defaults are filled in when the config is made, so the run
    records the values it used.
    """

    backbone: str
    data: str
    out: str
    weights: str | None = None
    strategy: str = "head"
    unfreeze: int = 2
    epochs: int = 10
    finetune_epochs: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    finetune_lr: float | None = None
    optimizer: str = "adam"
    schedule: str = "constant"
    patience: int = 3
    image_size: tuple[int, ...] | None = None
    bands: tuple[str, ...] | None = None
    augment: bool = True
    cache: bool = True
    class_weights: bool = True
    max_pixels: int = MAX_PIXELS
    val_split: float = 0.15
    test_split: float = 0.15
    seed: int = 0
    hidden: tuple[int, ...] = ()
    dropout: float = 0.2
    mixed_precision: bool | None = None
    backbone_options: dict[str, Any] = field(default_factory=dict)
    registry_files: tuple[str, ...] = ()
    resume: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        self._choice("strategy", STRATEGIES)
        self._choice("optimizer", OPTIMIZERS)
        self._choice("schedule", SCHEDULES)
        for name in ("epochs", "batch_size", "unfreeze", "max_pixels"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if self.finetune_epochs is not None and self.finetune_epochs < 1:
            raise ConfigError(f"--finetune-epochs must be at least 1, got {self.finetune_epochs}")
        for name in ("lr", "finetune_lr"):
            rate = getattr(self, name)
            if rate is not None and not (math.isfinite(rate) and rate > 0):
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be a positive number, got {rate}")
        if self.patience < 1:
            raise ConfigError(f"--patience must be at least 1, got {self.patience}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.image_size is not None and len(self.image_size) not in (1, 2, 3):
            raise ConfigError(f"--image-size takes H, H,W or H,W,C; got {self.image_size}")
        object.__setattr__(self, "data", str(Path(self.data).expanduser().resolve()))
        if self.finetune_lr is None:
            object.__setattr__(self, "finetune_lr", self.lr / 10)
        if self.finetune_epochs is None:
            object.__setattr__(self, "finetune_epochs", self.epochs)

    def _choice(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise ConfigError(f"--{name} must be one of {', '.join(allowed)}; got {value!r}")

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of setting ``name`` (the CLI shows these)."""
        return cls.__dataclass_fields__[name].default

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (sequences as lists), as config.json records them."""
        data = dataclasses.asdict(self)
        for key in _SEQUENCES:
            data[key] = list(data[key]) if data[key] is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """The config that ``to_dict`` recorded."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in _SEQUENCES:
            if values.get(key) is not None:
                values[key] = tuple(values[key])
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
            differences = ", ".join(f"{k} {recorded[k]!r} (asked {asked[k]!r})" for k in changed)
            raise ConfigError(
                f"the run in {self.out} was started with other settings: {differences}; resume "
                "without them to continue with the run's own, or start a new run"
            )
        kept = {k: asked[k] for k in given if k in self.RESUMABLE}
        return FinetuneConfig.from_dict({**recorded, **kept, "resume": True, "force": False})

    # Settings that may differ when a run is resumed (the folder may have moved).
    RESUMABLE = frozenset({"out", "resume", "force", "epochs", "finetune_epochs", "patience"})


_SEQUENCES = ("image_size", "bands", "hidden", "registry_files")
