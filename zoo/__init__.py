"""zoo: a registry of image backbones, fine-tuning with export, and TF Serving.

Importing zoo is cheap: TensorFlow loads only when a model is built or run.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from zoo.build import LoadRules, ModelFileOptions, create_backbone
from zoo.errors import (
    ClusterMemberLost,
    ConfigError,
    DataError,
    DataWarning,
    DownloadError,
    DuplicateBackboneError,
    ExportError,
    FolderLockedError,
    ImageError,
    MetricsError,
    PluginError,
    PluginWarning,
    RegistryFileError,
    RegistryFileWarning,
    RunDirError,
    SpecError,
    TrainingError,
    TrainingInterrupted,
    TrainingWarning,
    UnknownBackboneError,
    WeightsError,
    WeightsWarning,
    ZooError,
    ZooWarning,
)
from zoo.export import export  # the function: it shadows the package's name here
from zoo.hookspecs import hookimpl
from zoo.plugin_loader import get_registry, load_registry
from zoo.registry import Registry
from zoo.spec import BackboneSpec, WeightSource

try:  # the version is written once, in pyproject.toml
    __version__ = importlib.metadata.version("zoo")
except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"


def finetune(*args: Any, **kwargs: Any) -> Any:
    """Fine-tune a backbone; see zoo.train.finetune.finetune (imported lazily: it needs TensorFlow)."""
    from zoo.train.finetune import finetune as run

    return run(*args, **kwargs)


def load_run(path: Any) -> Any:
    """A finished run with its model; see zoo.train.rundir.load_run (imports TensorFlow)."""
    from zoo.train.rundir import load_run as load

    return load(path)


def get_spec(name: str) -> BackboneSpec:
    """The registered spec for ``name`` (raises UnknownBackboneError with suggestions)."""
    return get_registry().get(name)


def list_backbones(pattern: str | None = None) -> list[BackboneSpec]:
    """Registered backbones sorted by name, optionally filtered by an fnmatch pattern."""
    return get_registry().specs(pattern)


__all__ = [
    "BackboneSpec",
    "ConfigError",
    "DataError",
    "DataWarning",
    "DownloadError",
    "DuplicateBackboneError",
    "ExportError",
    "FolderLockedError",
    "ImageError",
    "MetricsError",
    "ClusterMemberLost",
    "PluginError",
    "PluginWarning",
    "Registry",
    "RegistryFileError",
    "RegistryFileWarning",
    "RunDirError",
    "SpecError",
    "TrainingError",
    "TrainingInterrupted",
    "TrainingWarning",
    "UnknownBackboneError",
    "WeightSource",
    "WeightsError",
    "WeightsWarning",
    "ZooError",
    "ZooWarning",
    "__version__",
    "create_backbone",
    "export",
    "finetune",
    "get_registry",
    "get_spec",
    "hookimpl",
    "LoadRules",
    "ModelFileOptions",
    "list_backbones",
    "load_registry",
    "load_run",
]
