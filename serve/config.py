"""TF Serving's model config file (``--model_config_file``), written and read through its proto.

Every engine is driven by the same file: the embedded server reads it, the real
``tensorflow_model_server`` and its docker image are given it. Nothing here writes
protobuf text by hand: messages are built and printed with ``text_format``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from zoo.errors import ConfigError

PLATFORM = "tensorflow"
VersionPolicy = Literal["latest", "all", "specific"]
POLICIES: tuple[str, ...] = get_args(VersionPolicy)


@dataclass(frozen=True)
class ModelEntry:
    """One served model: its name, its base path (``<base_path>/<version>/``), which versions
    to serve (``latest`` N, ``all``, or ``specific`` numbers) and labels for versions."""

    name: str
    base_path: Path
    policy: VersionPolicy = "latest"
    latest: int = 1
    versions: tuple[int, ...] = ()
    labels: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_model_name(self.name)
        if self.policy not in POLICIES:
            raise ConfigError(
                f"model '{self.name}': version policy must be latest, all or specific"
            )
        if self.policy == "specific" and not self.versions:
            raise ConfigError(f"model '{self.name}': a specific version policy needs versions")


def check_model_name(name: str) -> None:
    """A model name is one path component, so it cannot lead a request outside its folder."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(f"model name {name!r} must be a plain name (no '/', '..')")


def model_config(entries: Sequence[ModelEntry]) -> model_server_config_pb2.ModelServerConfig:
    """The ModelServerConfig proto for ``entries`` (base paths made absolute)."""
    config = model_server_config_pb2.ModelServerConfig()
    names = [entry.name for entry in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"model names must be unique; repeated: {', '.join(duplicates)}")
    for entry in entries:
        model = config.model_config_list.config.add()
        model.name = entry.name
        model.base_path = str(Path(entry.base_path).expanduser().resolve())
        model.model_platform = PLATFORM
        policy = model.model_version_policy
        if entry.policy == "all":
            policy.all.SetInParent()
        elif entry.policy == "specific":
            policy.specific.versions.extend(entry.versions)
        else:
            policy.latest.num_versions = entry.latest
        for label, version in entry.labels.items():
            model.version_labels[label] = version
    return config


def write_model_config(path: Path, entries: Sequence[ModelEntry]) -> Path:
    from zoo.fs import write_text

    return write_text(path, text_format.MessageToString(model_config(entries)))


def read_model_config(path: str | Path) -> list[ModelEntry]:
    """The models of a ``--model_config_file``; a clear error names what is wrong."""
    path = Path(path).expanduser()
    try:
        config = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    except OSError as exc:
        raise ConfigError(f"cannot read the model config file {path}: {exc.strerror}") from None
    except text_format.ParseError as exc:  # TF Serving's words, then the file
        raise ConfigError(
            f"Error parsing text-format tensorflow.serving.ModelServerConfig: {exc} ({path})"
        ) from None
    if not config.HasField("model_config_list"):
        raise ConfigError(f"{path}: holds no model_config_list")
    return [entry_from_proto(model) for model in config.model_config_list.config]


def entry_from_proto(model: model_server_config_pb2.ModelConfig) -> ModelEntry:
    """A ModelEntry from one ModelConfig of a config file or a reload request."""
    policy = model.model_version_policy
    kind = policy.WhichOneof("policy_choice") or "latest"
    return ModelEntry(
        name=model.name,
        base_path=Path(model.base_path),
        policy=kind,
        latest=policy.latest.num_versions or 1,
        versions=tuple(policy.specific.versions),
        labels=dict(model.version_labels),
    )


def entries_for(paths: Sequence[str | Path]) -> list[ModelEntry]:
    """Models from folders: a base of models (``BASE/NAME/<version>``) or one model's folder."""
    entries: list[ModelEntry] = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"{path} is not a folder of exported models")
        if _is_model(path):
            entries.append(ModelEntry(path.name, path))
            continue
        models = sorted(p for p in path.iterdir() if p.is_dir() and _is_model(p))
        if not models:
            raise ConfigError(
                f"{path} holds no exported model (NAME/<version>/saved_model.pb); export one "
                "with `zoo export RUN --base BASE --name NAME`"
            )
        entries += [ModelEntry(model.name, model) for model in models]
    return entries


def _is_model(path: Path) -> bool:
    """A folder with at least one integer version holding a SavedModel."""
    return any(
        child.name.isdigit() and (child / "saved_model.pb").is_file() for child in path.iterdir()
    )
