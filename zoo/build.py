"""``zoo.create_backbone``: the one way to turn a name or a model file into a feature extractor.

The CLI, training, export and the tests all come through here, so every backbone gets
the same checks: a 2-D feature output, weights loaded by name with a load report, and
the spec kept beside the model for the steps that follow (preprocessing, blocks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import SpecError, UnknownBackboneError, WeightsError
from zoo.registry import Registry
from zoo.spec import MODEL_FILE_BUILDER, MODEL_FILE_LAYER_MODULES, BackboneSpec
from zoo.weights.report import LoadReport

Rule = tuple[str, str]


@dataclass(frozen=True)
class ModelFileOptions:
    """How a model file gives its features: the layer to cut a full model at, a TF1 graph's
    input and feature tensors, a SavedModel's signature and output, and whether a
    ``.keras`` file may run code of its own (``safe_mode`` off)."""

    feature_layer: str | None = None
    input_tensor: str | None = None
    feature_tensor: str | None = None
    signature: str | None = None
    output: str | None = None
    safe_mode: bool = True

    def given(self) -> dict[str, Any]:
        """The options set to other than their defaults."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }


@dataclass(frozen=True)
class LoadRules:
    """How weights load by name: regexes of source variables not to load (None: the old
    ``logits`` and ``global_step``), (pattern, replacement) rules from source names to the
    model's variable paths, and ``strict`` to fail when a model variable is left unloaded."""

    skip: tuple[str, ...] | None = None
    rename: tuple[Rule, ...] = ()
    strict: bool = False

    def __post_init__(self) -> None:
        rename = self.rename.items() if isinstance(self.rename, dict) else self.rename
        object.__setattr__(self, "rename", tuple(tuple(rule) for rule in rename))
        if self.skip is not None:
            object.__setattr__(self, "skip", tuple(self.skip))


def create_backbone(
    source: str | Path,
    weights: str | Path | None = None,
    input_shape: Sequence[int] | None = None,
    *,
    model_file: ModelFileOptions = ModelFileOptions(),
    rules: LoadRules = LoadRules(),
    registry: Registry | None = None,
    progress: bool = True,
) -> Any:
    """A Keras model mapping preprocessed images to a pooled 2-D feature tensor.

    ``source`` is a registry name (``"resnet50"``) or a self-describing model: a SavedModel
    folder, a ``.keras`` file, a full-model ``.h5`` or a TF1 ``.meta`` graph, read as
    ``model_file`` says. ``weights`` (named architectures) is None for random
    initialisation, a catalog weight name (``"imagenet"``), or a ``.weights.h5`` /
    ``.keras`` / legacy ``.h5`` file or TF1/TF2 checkpoint, loaded by name under ``rules``;
    for a ``.meta`` source it is the checkpoint prefix, if not the one beside the graph.
    ``input_shape`` is (height, width, channels) or (height, width).

    The model carries ``model.load_report`` (a LoadReport, or None for random weights)
    and ``model.backbone_spec`` (the BackboneSpec, for preprocessing and blocks).
    """
    from zoo.sources import source_kind

    kind = source_kind(source)
    if kind is not None:
        spec = _source_spec(str(source), input_shape)
        shape = _shape(spec, input_shape) if input_shape is not None else None
        raw = _build_source(str(source), kind, shape, weights, model_file)
        report = getattr(raw, "load_report", None)  # a meta graph loads its own checkpoint
        model = _pooled(raw, str(source))
        if weights is not None and kind != "meta":
            report = _load(model, spec, weights, rules, progress)
        return _finish(model, spec, report)

    spec = _lookup(str(source), registry)
    shape = _shape(spec, input_shape)
    options = dict(spec.build_options)
    if spec.carries_weights:  # a registry.yaml `source:` entry
        options.update(model_file.given())
    raw = spec.resolve_build()(shape, **options)
    if model_file.feature_layer is not None and not spec.carries_weights:
        from zoo.sources.keras_model import cut_at

        raw = cut_at(raw, model_file.feature_layer, source=spec.name)
    report = getattr(raw, "load_report", None)
    model = _pooled(raw, spec.name)
    if weights is not None:
        report = _load(model, spec, weights, rules, progress)
    return _finish(model, spec, report)


def _lookup(name: str, registry: Registry | None) -> BackboneSpec:
    if registry is None:
        from zoo.plugin_loader import get_registry

        registry = get_registry()
    try:
        return registry.get(name)
    except UnknownBackboneError:
        if "/" in name or Path(name).suffix:
            raise WeightsError(
                f"'{name}' is neither a registered backbone nor a model zoo can load: "
                "no SavedModel folder, .keras, .h5 or .meta file exists there"
            ) from None
        raise


def _shape(spec: BackboneSpec, requested: Sequence[int] | None) -> tuple[int, int, int]:
    if requested is None:
        return spec.input_shape
    values = tuple(int(v) for v in requested)
    if len(values) == 2:
        values = (*values, spec.input_shape[2])
    if len(values) != 3 or min(values) <= 0:
        raise SpecError(
            f"input_shape must be (height, width) or (height, width, channels), got {tuple(requested)}"
        )
    return values  # type: ignore[return-value]


def _source_spec(path: str, input_shape: Sequence[int] | None) -> BackboneSpec:
    shape = tuple(input_shape) if input_shape is not None and len(input_shape) == 3 else (1, 1, 1)
    return BackboneSpec(
        name=Path(path).name.replace(" ", "_") or "source",
        build=MODEL_FILE_BUILDER,
        input_shape=shape,  # replaced by the model's own shape in _finish
        build_options={"source": path},
        layer_modules=MODEL_FILE_LAYER_MODULES,
    )


def _build_source(
    path: str,
    kind: str,
    shape: tuple[int, int, int] | None,
    weights: Any,
    options: ModelFileOptions,
) -> Any:
    from zoo.sources import build_from_source

    if kind == "meta":
        from zoo.sources.meta_graph import meta_graph_backbone

        return meta_graph_backbone(
            path,
            shape,
            input_tensor=options.input_tensor,
            feature_tensor=options.feature_tensor,
            checkpoint=str(weights) if weights is not None else None,
        )
    return build_from_source(shape, path, **dataclasses.asdict(options))


def _pooled(model: Any, name: str) -> Any:
    """Insist on the builder contract: features of rank 2 (a 4-D map is pooled)."""
    import keras

    rank = len(model.outputs[0].shape)
    if rank == 2:
        return model
    if rank == 4:
        pooled = keras.layers.GlobalAveragePooling2D(name="feature_pool")(model.outputs[0])
        return keras.Model(model.inputs, pooled, name=model.name)
    raise SpecError(
        f"the features of {name} have rank {rank}; choose a layer or output with a 2-D "
        "(batch, features) or 4-D (batch, height, width, channels) result"
    )


def _load(
    model: Any, spec: BackboneSpec, weights: str | Path, rules: LoadRules, progress: bool
) -> LoadReport:
    from zoo.weights.loading import load_weights

    path: str | Path = weights
    if isinstance(weights, str) and weights in {w.name for w in spec.weights}:
        from zoo.weights.download import fetch_weights

        path = fetch_weights(spec.weight(weights), backbone=spec.name, progress=progress)
    elif isinstance(weights, str) and not _looks_like_path(weights):
        known = ", ".join(w.name for w in spec.weights) or "none"
        raise WeightsError(
            f"'{weights}' is neither a weight name of '{spec.name}' (known: {known}) nor an "
            "existing file or checkpoint"
        )
    return load_weights(
        model,
        path,
        skip=rules.skip,
        rename=rules.rename,
        plugin_rules=spec.checkpoint_rename,
        strict=rules.strict,
        channels=int(model.inputs[0].shape[-1]),
    )


def _looks_like_path(value: str) -> bool:
    p = Path(value).expanduser()
    return p.exists() or Path(value + ".index").exists() or "/" in value or bool(p.suffix)


def _finish(model: Any, spec: BackboneSpec, report: LoadReport | None) -> Any:
    """Attach the load report and the spec; a model file's spec takes the model's own shape."""
    from dataclasses import replace

    dims = tuple(model.inputs[0].shape[1:])
    if spec.carries_weights and None not in dims:
        spec = replace(spec, input_shape=tuple(int(d) for d in dims))
    if spec.carries_weights and not spec.blocks:
        from zoo.blocks import infer_blocks

        spec = replace(spec, blocks=infer_blocks(model))
    model.load_report = report
    model.backbone_spec = spec
    return model
