"""TF1 meta graphs (``.meta`` + checkpoint) as trainable, exportable Keras backbones.

The old tutorials' recipe (``import_meta_graph``, restore, take ``ConvLayer_output:0``)
is done once, then the graph is made into a Keras layer:

1. import the graph and prune it to what ``feature_tensor`` needs from ``input_tensor``;
2. replace every variable in that subgraph by a placeholder, so the graph becomes a
   pure function of (images, variable values);
3. own the variables as Keras weights, loaded from the checkpoint, trainable as the
   graph declared them, and call the pure function with their current values.

Gradients flow into the Keras weights, so the backbone can be fine-tuned, saved as
``.keras`` and exported as a SavedModel like any other.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo.errors import WeightsError, one_line
from zoo.weights.report import LoadReport

VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp"}


def meta_graph_backbone(
    meta_path: str,
    input_shape: tuple[int, int, int] | None,
    *,
    input_tensor: str | None,
    feature_tensor: str | None,
    checkpoint: str | None = None,
) -> Any:
    """A Keras model for the ``input_tensor`` → ``feature_tensor`` part of a TF1 graph.

    ``checkpoint`` defaults to the prefix beside the ``.meta`` file (``model.ckpt`` for
    ``model.ckpt.meta``). The returned model carries a ``load_report``.
    """
    if not input_tensor or not feature_tensor:
        raise WeightsError(
            f"{meta_path} is a TF1 meta graph: name its image input and feature tensors, e.g. "
            "input_tensor='X:0', feature_tensor='ConvLayer_output:0'"
        )
    checkpoint = checkpoint or meta_path[: -len(".meta")]
    graph_def, graph_input, variables = _prune(meta_path, input_tensor, feature_tensor)
    values, report = _read_values(checkpoint, variables)
    shape = _image_shape(meta_path, graph_input, input_shape)
    layer = MetaGraphLayer(
        graph_def=base64.b64encode(graph_def.SerializeToString()).decode("ascii"),
        input_name=input_tensor,
        feature_name=feature_tensor,
        variables=variables,
        name="meta_graph",
    )
    images = keras.Input(shape=shape, name="images")
    model = keras.Model(images, layer(images), name="meta_graph_backbone")
    for weight, spec in zip(layer.graph_variables, variables, strict=True):
        weight.assign(values[spec["name"]])
        report.matched.append((weight.path, spec["name"]))
    model.load_report = report
    return model


@keras.saving.register_keras_serializable(package="zoo")
class MetaGraphLayer(keras.layers.Layer):
    """A pruned TF1 graph as a layer: images in, the feature tensor out."""

    def __init__(
        self,
        graph_def: str,
        input_name: str,
        feature_name: str,
        variables: list[dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.graph_def = graph_def
        self.input_name = input_name
        self.feature_name = feature_name
        self.variable_specs = [dict(v) for v in variables]
        self.graph_variables = [
            self.add_weight(
                name=_weight_name(spec["name"]),
                shape=tuple(spec["shape"]),
                dtype=spec["dtype"],
                trainable=spec["trainable"],
                initializer="zeros",
            )
            for spec in self.variable_specs
        ]
        parsed = tf.compat.v1.GraphDef.FromString(base64.b64decode(graph_def))
        node = _node(parsed, input_name.split(":")[0])
        self.graph_input_shape = tuple(
            None if d.size < 0 else d.size for d in node.attr["shape"].shape.dim
        )
        # Plain attributes would be tracked, and saved, by Keras and tf.Module.
        object.__setattr__(self, "_parsed_graph", parsed)
        object.__setattr__(self, "_function", None)

    def _pure_function(self, input_spec: tf.TensorSpec) -> Any:
        if self._function is None:
            graph_def = self._parsed_graph
            names = [spec["name"] for spec in self.variable_specs]

            def run(images: Any, *values: Any) -> Any:
                input_map = {self.input_name: images}
                input_map.update(
                    {f"{name}:0": value for name, value in zip(names, values, strict=True)}
                )
                (features,) = tf.graph_util.import_graph_def(
                    graph_def, input_map=input_map, return_elements=[self.feature_name], name="g"
                )
                return features

            specs = [tf.TensorSpec(s["shape"], s["dtype"]) for s in self.variable_specs]
            object.__setattr__(
                self, "_function", tf.compat.v1.wrap_function(run, [input_spec, *specs])
            )
        return self._function

    def call(self, images: Any) -> Any:
        graph_shape = self.graph_input_shape
        if len(graph_shape) == 2:  # a flat placeholder, as in the MNIST-era tutorials
            images = tf.reshape(images, (-1, graph_shape[1]))
        spec = tf.TensorSpec((None, *graph_shape[1:]), tf.float32)
        function = self._pure_function(spec)
        return function(
            tf.cast(images, tf.float32), *[tf.convert_to_tensor(v) for v in self.graph_variables]
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "graph_def": self.graph_def,
            "input_name": self.input_name,
            "feature_name": self.feature_name,
            "variables": self.variable_specs,
        }


def _prune(
    meta_path: str, input_tensor: str, feature_tensor: str
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """The subgraph ``feature_tensor`` needs, with variables replaced by placeholders."""
    graph = tf.Graph()
    with graph.as_default():
        try:
            tf.compat.v1.train.import_meta_graph(meta_path, clear_devices=True)
        except Exception as exc:
            raise WeightsError(
                f"cannot import the meta graph {meta_path}: {one_line(exc)}"
            ) from exc
        graph_input = _tensor(graph, meta_path, input_tensor)
        graph_features = _tensor(graph, meta_path, feature_tensor)
        trainable = {v.op.name for v in tf.compat.v1.trainable_variables()}
    full = graph.as_graph_def()
    sub = _ancestors(full, graph_features.op.name)
    variables: list[dict[str, Any]] = []
    reads: dict[str, str] = {}
    pruned = tf.compat.v1.GraphDef()
    pruned.versions.CopyFrom(full.versions)
    pruned.library.CopyFrom(full.library)
    for node in sub:
        if node.op in VARIABLE_OPS:
            dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).base_dtype
            shape = [d.size for d in node.attr["shape"].shape.dim]
            variables.append(
                {
                    "name": node.name,
                    "shape": shape,
                    "dtype": dtype.name,
                    "trainable": node.name in trainable,
                }
            )
            reads[node.name] = dtype.name
            placeholder = pruned.node.add()
            placeholder.name = node.name
            placeholder.op = "Placeholder"
            placeholder.attr["dtype"].type = dtype.as_datatype_enum
            placeholder.attr["shape"].shape.CopyFrom(node.attr["shape"].shape)
        else:
            pruned.node.add().CopyFrom(node)
    for node in pruned.node:
        if node.op == "ReadVariableOp" and node.input and node.input[0] in reads:
            node.op = "Identity"
            node.attr["T"].type = node.attr["dtype"].type
            del node.attr["dtype"]
    _check_feeds(pruned, meta_path, graph_input.op.name, set(reads))
    return pruned, graph_input, variables


def _ancestors(graph_def: Any, target: str) -> list[Any]:
    """The nodes ``target`` depends on (data and control inputs), in graph order."""
    nodes = {node.name: node for node in graph_def.node}
    keep: set[str] = set()
    stack = [target]
    while stack:
        name = stack.pop()
        if name not in keep:
            keep.add(name)
            stack += [i.lstrip("^").split(":")[0] for i in nodes[name].input]
    return [node for node in graph_def.node if node.name in keep]


def _check_feeds(graph_def: Any, meta_path: str, input_op: str, variables: set[str]) -> None:
    extra = [
        n.name
        for n in graph_def.node
        if n.op == "Placeholder" and n.name != input_op and n.name not in variables
    ]
    if extra:
        raise WeightsError(
            f"in {meta_path}, the features also depend on placeholder(s) "
            f"{', '.join(e + ':0' for e in extra)} besides {input_op}:0; choose a feature "
            "tensor computed from the images alone"
        )
    if input_op not in {n.name for n in graph_def.node}:
        raise WeightsError(f"in {meta_path}, the feature tensor does not depend on {input_op}:0")


def _read_values(
    checkpoint: str, variables: list[dict[str, Any]]
) -> tuple[dict[str, np.ndarray], LoadReport]:
    report = LoadReport(source=checkpoint, kind="TF1 meta graph + checkpoint")
    try:
        reader = tf.train.load_checkpoint(checkpoint)
    except Exception as exc:
        raise WeightsError(
            f"cannot read the checkpoint {checkpoint} for the meta graph: {one_line(exc)} "
            "(is it truncated, or is the prefix wrong?)"
        ) from exc
    available = reader.get_variable_to_shape_map()
    needed = {spec["name"] for spec in variables}
    values: dict[str, np.ndarray] = {}
    for spec in variables:
        name = spec["name"]
        if name not in available:
            raise WeightsError(
                f"checkpoint {checkpoint} has no variable '{name}', which the graph needs"
            )
        if list(available[name]) != list(spec["shape"]):
            raise WeightsError(
                f"variable '{name}' in {checkpoint} has shape {list(available[name])}, "
                f"the graph expects {spec['shape']}"
            )
        try:
            values[name] = reader.get_tensor(name)
        except Exception as exc:
            raise WeightsError(
                f"cannot read variable '{name}' from {checkpoint}: {one_line(exc)} (truncated?)"
            ) from exc
    from zoo.weights.loading import DEFAULT_SKIP

    others = sorted(k for k in available if k not in needed)
    report.skipped = [k for k in others if any(re.search(p, k) for p in DEFAULT_SKIP)]
    report.unexpected = [k for k in others if k not in report.skipped]
    report.notes.append(
        "the graph's other variables (heads, optimizer state) are not part of the backbone"
    )
    return values, report


def _tensor(graph: Any, meta_path: str, name: str) -> Any:
    try:
        return graph.get_tensor_by_name(name)
    except (KeyError, ValueError):
        placeholders = [op.name + ":0" for op in graph.get_operations() if op.type == "Placeholder"]
        near = [
            op.name + ":0"
            for op in graph.get_operations()
            if name.split(":")[0].lower() in op.name.lower()
        ][:5]
        hint = f"; similar: {', '.join(near)}" if near else ""
        raise WeightsError(
            f"{meta_path} has no tensor '{name}' (tensor names look like 'op_name:0'; "
            f"placeholders: {', '.join(placeholders[:5]) or 'none'}{hint})"
        ) from None


def _image_shape(
    meta_path: str, graph_input: Any, requested: tuple[int, int, int] | None
) -> tuple[int, ...]:
    dims = graph_input.shape.as_list() if graph_input.shape.rank is not None else None
    if dims is not None and len(dims) == 4:
        declared = tuple(dims[1:])
        if requested is None:
            if None in declared:
                raise WeightsError(
                    f"{graph_input.name} in {meta_path} has open dimensions; pass input_shape"
                )
            return declared
        if any(d is not None and d != r for d, r in zip(declared, requested, strict=True)):
            raise WeightsError(
                f"{graph_input.name} in {meta_path} takes {declared}, not {tuple(requested)}"
            )
        return tuple(requested)
    if dims is not None and len(dims) == 2 and dims[1] is not None:
        if requested is None or int(np.prod(requested)) != dims[1]:
            raise WeightsError(
                f"{graph_input.name} in {meta_path} takes flat vectors of {dims[1]} values; pass "
                f"input_shape=(height, width, channels) with that many pixels"
            )
        return tuple(requested)
    raise WeightsError(
        f"{graph_input.name} in {meta_path} has shape {dims}; expected images or flat vectors"
    )


def _node(graph_def: Any, name: str) -> Any:
    for node in graph_def.node:
        if node.name == name:
            return node
    raise WeightsError(f"the graph has no node '{name}'")


def _weight_name(tf1_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", ".", tf1_name)
