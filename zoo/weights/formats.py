"""Recognising a weights file and reading its tensors, whatever wrote it.

Every format becomes a ``WeightFile``: a table of named tensors, plus the way to name a
model's variables in the same scheme, so one matching loop (``zoo.weights.loading``)
serves them all:

- TF1 name-based checkpoints (``.index`` / ``.data`` pairs, or single-file V1
  checkpoints such as TF-Slim's): tensors are named by variable scope; model variables
  by their Keras path (``conv1/kernel``), after the rename rules.
- TF2 object-based checkpoints (``tf.train.Checkpoint``): tensors are named by their
  path through the object graph; the model is walked along the same graph.
- Keras 3 weights (``.weights.h5``, or the weights inside a ``.keras`` archive): tensors
  are named ``layers/<layer>/vars/<i>`` as Keras's own saver names them.
- Legacy Keras HDF5 (Keras 2 ``save_weights`` files, keras.applications downloads, or
  full ``.h5`` models): tensors are named ``<layer>/<weight>``, as Keras paths are.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import WeightsError, one_line

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
KERAS_ARCHIVE_WEIGHTS = "model.weights.h5"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"

TF1_CHECKPOINT = "TF1 checkpoint"
TF2_CHECKPOINT = "TF2 checkpoint"
KERAS_WEIGHTS = "Keras weights"
LEGACY_H5 = "legacy Keras HDF5"


@dataclass
class WeightFile:
    """Named tensors from one file, and how to name a model's variables to match them."""

    path: str
    kind: str
    shapes: dict[str, tuple[int, ...]]
    reader: Callable[[str], np.ndarray]
    model_keys: Callable[[Any], dict[str, Any]]
    ignored: dict[str, str] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def name_based(self) -> bool:
        """Whether a plugin's checkpoint_rename rules apply (TF1 scope names)."""
        return self.kind == TF1_CHECKPOINT

    def read(self, key: str) -> np.ndarray:
        try:
            return np.asarray(self.reader(key))
        except Exception as exc:
            raise WeightsError(
                f"cannot read variable '{key}' from {self.kind} {self.path}: "
                f"{one_line(exc)} (is the file truncated or corrupt?)"
            ) from exc

    def close(self) -> None:
        for close in self.closers:
            close()

    def __enter__(self) -> WeightFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_weights(path: str | Path) -> WeightFile:
    """Recognise the weights at ``path`` from their content; a wrong guess says what it found."""
    p = Path(path).expanduser()
    if p.is_dir():
        return _open_directory(p)
    if p.name.endswith(".meta"):
        raise WeightsError(
            f"{p} is a TF1 meta graph: pass it as the source "
            f"(create_backbone('{p}', model_file=ModelFileOptions(input_tensor=..., feature_tensor=...))), or pass its "
            f"checkpoint prefix '{str(p)[: -len('.meta')]}' as weights"
        )
    prefix = _checkpoint_prefix(p)
    if prefix is not None:
        return _open_checkpoint(prefix)
    if not p.exists():
        raise WeightsError(f"weights file {p} does not exist")
    with open(p, "rb") as handle:
        head = handle.read(8)
    if head == HDF5_MAGIC:
        return _open_hdf5(p, str(p))
    if head.startswith(ZIP_MAGIC):
        return _open_keras_archive(p)
    try:
        return _open_checkpoint(str(p))  # a single-file V1 checkpoint (TF-Slim's .ckpt)
    except WeightsError:
        raise WeightsError(
            f"cannot tell what kind of weights {p} is: it is not HDF5 (.h5, .weights.h5), "
            f"not a zip archive (.keras) and not a TensorFlow checkpoint; it starts with {head!r}"
        ) from None


def _open_directory(p: Path) -> WeightFile:
    if (p / "saved_model.pb").exists():
        raise WeightsError(
            f"{p} is a SavedModel, a self-describing model rather than weights: "
            f"pass it as the source, create_backbone('{p}')"
        )
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(p))
    if latest:
        return _open_checkpoint(latest)
    found = ", ".join(sorted(child.name for child in p.iterdir())[:8]) or "nothing"
    raise WeightsError(
        f"{p} is a directory without a checkpoint (no 'checkpoint' file) or SavedModel; "
        f"found: {found}; pass the checkpoint prefix or the weights file itself"
    )


def _checkpoint_prefix(p: Path) -> str | None:
    text = str(p)
    if text.endswith(".index"):
        return text[: -len(".index")]
    if ".data-" in p.name:
        return text[: text.rindex(".data-")]
    if Path(text + ".index").exists():
        return text
    return None


def _open_checkpoint(prefix: str) -> WeightFile:
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as exc:  # DataLossError, NotFoundError, ...
        raise WeightsError(
            f"cannot read TensorFlow checkpoint {prefix}: {one_line(exc)} "
            "(is it truncated or corrupt, or is the prefix wrong?)"
        ) from exc
    shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
    if OBJECT_GRAPH_KEY not in shapes:
        return WeightFile(
            prefix,
            TF1_CHECKPOINT,
            shapes,
            reader.get_tensor,
            lambda model: {v.path: v for v in model.weights},
        )
    return _object_checkpoint(prefix, reader, shapes)


def _object_checkpoint(prefix: str, reader: Any, shapes: dict[str, tuple[int, ...]]) -> WeightFile:
    """A TF2 checkpoint: pair the object graph's nodes with the model's objects."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(OBJECT_GRAPH_KEY))
    root_id, root_name = _model_root(prefix, graph)
    in_model = set(_variable_keys(graph, root_id))
    ignored = {
        key: f"not under the checkpoint's '{root_name}' object (optimizer state, counters)"
        for key in shapes
        if key not in in_model
    }
    return WeightFile(
        prefix,
        TF2_CHECKPOINT,
        {k: s for k, s in shapes.items() if k in in_model},
        reader.get_tensor,
        lambda model: _walk_object_graph(graph, root_id, model),
        ignored=ignored,
    )


def _model_root(prefix: str, graph: Any) -> tuple[int, str]:
    """The root's child that holds the model: 'model' if present, else the only one with variables."""
    children = {ref.local_name: ref.node_id for ref in graph.nodes[0].children}
    holding = {name: node for name, node in children.items() if any(_variable_keys(graph, node))}
    if "model" in holding:
        return holding["model"], "model"
    if len(holding) == 1:
        ((name, node),) = holding.items()
        return node, name
    raise WeightsError(
        f"TF2 checkpoint {prefix} holds several objects with variables "
        f"({', '.join(sorted(holding)) or 'none'}); save the model as "
        "tf.train.Checkpoint(model=model) so zoo can tell which is the network"
    )


def _variable_keys(graph: Any, node_id: int) -> list[str]:
    keys: list[str] = []
    seen: set[int] = set()
    stack = [node_id]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        node = graph.nodes[current]
        keys += [a.checkpoint_key for a in node.attributes if a.name == "VARIABLE_VALUE"]
        stack += [ref.node_id for ref in node.children]
    return keys


def _walk_object_graph(graph: Any, root_id: int, model: Any) -> dict[str, Any]:
    """Checkpoint keys of the model's variables, found by walking graph and model together."""
    import tensorflow as tf

    keys: dict[str, Any] = {}
    seen: set[int] = set()
    stack: list[tuple[int, Any]] = [(root_id, model)]
    while stack:
        node_id, obj = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        node = graph.nodes[node_id]
        for attribute in node.attributes:
            if attribute.name == "VARIABLE_VALUE" and hasattr(obj, "assign"):
                keys[attribute.checkpoint_key] = obj
        try:
            children = tf.train.TrackableView.children(obj)
        except Exception:
            continue
        for ref in node.children:
            child = children.get(ref.local_name)
            if child is not None:
                stack.append((ref.node_id, child))
    return keys


def _open_hdf5(p: Path, label: str, handle: Any = None, closers: list | None = None) -> WeightFile:
    import h5py

    try:
        h5 = h5py.File(handle if handle is not None else p, "r")
    except OSError as exc:
        raise WeightsError(f"cannot open HDF5 file {label}: {one_line(exc)} (truncated?)") from exc
    closers = [*(closers or []), h5.close]
    if "layers" in h5 or "vars" in h5:
        datasets = _keras_datasets(h5)
        ignored = {k: "optimizer state" for k in datasets if k.startswith("optimizer/")}
        shapes = {k: d.shape for k, d in datasets.items() if k not in ignored}
        return WeightFile(
            label,
            KERAS_WEIGHTS,
            shapes,
            lambda key: datasets[key][()],
            _keras_variable_keys,
            ignored=ignored,
            closers=closers,
        )
    root = h5["model_weights"] if "model_weights" in h5 else h5
    if "layer_names" in root.attrs:
        datasets = _legacy_datasets(root)
        return WeightFile(
            label,
            LEGACY_H5,
            {k: d.shape for k, d in datasets.items()},
            lambda key: datasets[key][()],
            lambda model: {v.path: v for v in model.weights},
            closers=closers,
        )
    groups = ", ".join(list(h5.keys())[:8]) or "none"
    for close in closers:
        close()
    raise WeightsError(
        f"{label} is an HDF5 file without Keras weights (top-level groups: {groups}); "
        "expected a .weights.h5 file, a Keras 2 weights file or a full .h5 model"
    )


def _open_keras_archive(p: Path) -> WeightFile:
    archive = zipfile.ZipFile(p)
    names = archive.namelist()
    if KERAS_ARCHIVE_WEIGHTS not in names:
        archive.close()
        raise WeightsError(
            f"{p} is a zip archive but not a Keras .keras file (no {KERAS_ARCHIVE_WEIGHTS}; "
            f"found {', '.join(names[:6]) or 'nothing'})"
        )
    member = archive.open(KERAS_ARCHIVE_WEIGHTS)
    return _open_hdf5(p, str(p), handle=member, closers=[member.close, archive.close])


def _keras_datasets(h5: Any) -> dict[str, Any]:
    import h5py

    found: dict[str, Any] = {}

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            found[name] = item

    h5.visititems(visit)
    return found


def _legacy_datasets(root: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for layer in _strings(root.attrs["layer_names"]):
        group = root[layer]
        for weight in _strings(group.attrs.get("weight_names", [])):
            key = weight.removesuffix(":0")
            if not key.startswith(f"{layer}/"):
                key = f"{layer}/{key}"
            found[key] = group[weight]
    return found


def _keras_variable_keys(model: Any) -> dict[str, Any]:
    """Name the model's variables exactly as Keras's own weights saver does.

    Keras names saved variables by walking the model (``layers/<layer>/vars/<i>``);
    replaying that walk with an in-memory store yields the same names for our model.
    """
    from keras.src.saving import saving_lib

    store = saving_lib.NpzIOStore("", mode="w")
    saving_lib._save_state(
        model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set()
    )
    keys: dict[str, Any] = {}
    for path, variables in store.contents.items():
        prefix = "" if path == "__root__" else f"{path}/"
        for index, variable in variables.items():
            keys[f"{prefix}vars/{index}"] = variable
    return keys


def _strings(values: Any) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]
