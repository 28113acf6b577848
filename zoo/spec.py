"""Backbone specs: small frozen records of plain data that describe a backbone.

A spec says how to build a backbone and what it expects, never holds a model. Nothing
here imports TensorFlow: listing and inspecting backbones must stay instant.
"""

from __future__ import annotations

import dataclasses
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from zoo.errors import SpecError

PREPROCESSING_SCHEMES: Mapping[str, str] = MappingProxyType(
    {
        "none": "identity; the network rescales its own inputs",
        "caffe": "RGB to BGR, then ImageNet mean subtracted (pixels 0-255)",
        "tf": "pixels scaled from 0-255 to -1..1",
        "torch": "pixels scaled to 0..1, then ImageNet mean and std normalised",
        "asinh": "Lupton asinh stretch of flux images",
    }
)

#: The builder of backbones that come from a self-describing model file (SavedModel,
#: .keras, .h5, TF1 .meta): such a backbone carries its own weights.
MODEL_FILE_BUILDER = "zoo.sources:build_from_source"
#: Where the layers of such backbones live (a TF1 graph is wrapped in a custom layer).
MODEL_FILE_LAYER_MODULES = ("zoo.sources.meta_graph",)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_MODULE = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")
_BUILD_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_HEX = {"sha256": 64, "md5": 32}


def _fail(owner: str, field_name: str, problem: str) -> SpecError:
    return SpecError(f"{owner}: field '{field_name}' {problem}")


@dataclass(frozen=True)
class WeightSource:
    """A named set of pretrained weights: a URL with a checksum, or a local path.

    ``md5`` exists because Keras publishes only md5 sums for most of its ImageNet files;
    ``sha256`` is preferred wherever it is known. ``member`` names the file to use inside
    a downloaded archive (TF-Slim ships its checkpoints as ``.tar.gz``). ``channels`` is
    the number of input channels the weights were trained on, when a backbone has
    weights for several.
    """

    name: str
    url: str | None = None
    path: str | None = None
    sha256: str | None = None
    md5: str | None = None
    member: str | None = None
    channels: int | None = None
    licence: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        owner = f"weights '{self.name}'"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise _fail(owner, "name", "must be a word such as 'imagenet'")
        if (self.url is None) == (self.path is None):
            raise _fail(owner, "url", "or 'path' must be given, and not both")
        if self.url is not None and not re.match(r"(https?|file)://", str(self.url)):
            raise _fail(
                owner, "url", f"must start with http://, https:// or file://, got {self.url!r}"
            )
        if self.channels is not None and (
            isinstance(self.channels, bool)
            or not isinstance(self.channels, int)
            or self.channels < 1
        ):
            raise _fail(owner, "channels", f"must be a positive integer, got {self.channels!r}")
        for algorithm, length in _HEX.items():
            digest = getattr(self, algorithm)
            if digest is not None and not re.fullmatch(f"[0-9a-f]{{{length}}}", str(digest)):
                raise _fail(
                    owner, algorithm, f"must be {length} lowercase hex digits, got {digest!r}"
                )

    @property
    def checksum(self) -> tuple[str, str] | None:
        """The strongest known checksum as (algorithm, hex digest), or None if unverified."""
        if self.sha256:
            return ("sha256", self.sha256)
        if self.md5:
            return ("md5", self.md5)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, "")}


@dataclass(frozen=True)
class BackboneSpec:
    """Everything zoo needs to know about one backbone, as plain data.

    Only ``name``, ``build`` and ``input_shape`` are required. ``build`` is a callable or a
    ``"module:function"`` string resolved on first use, called as
    ``build(input_shape, **build_options)`` and returning a Keras model that maps a batch
    of preprocessed images to a 2-D feature tensor.

    ``default_weights`` names the weights fine-tuning uses unless told otherwise, in
    order of preference: the first trained on the input's number of channels, else the
    first.

    ``blocks`` are regular expressions (full match) naming the layers at which the
    network's blocks end, in model order; "unfreeze the top N blocks" trains every layer
    after the Nth boundary from the end.

    ``checkpoint_rename`` is the plugin's own map from TF1 checkpoint variable names to
    the model's variable paths: (regex, replacement) rules applied in order with
    ``re.sub`` (TF-Slim's scopes for inception_v4, say). Users add rules of their own.

    ``layer_modules`` are modules to import before a saved model of this backbone is
    loaded again, because its custom Keras layers register themselves there (the
    builder's own module is always imported too).

    ``plugin``, ``distribution`` and ``registry_file`` record who registered the spec;
    the registry fills them in, a plugin author leaves them empty.
    """

    name: str
    build: Callable[..., Any] | str
    input_shape: tuple[int, int, int]
    preprocessing: str = "none"
    feature_dim: int | None = None
    weights: tuple[WeightSource, ...] = ()
    default_weights: tuple[str, ...] = ()
    blocks: tuple[str, ...] = ()
    checkpoint_rename: tuple[tuple[str, str], ...] = ()
    build_options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    licence: str | None = None
    citation: str | None = None
    layer_modules: tuple[str, ...] = ()
    plugin: str | None = None
    distribution: str | None = None
    registry_file: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise SpecError(
                f"backbone name {self.name!r} is invalid: use letters, digits, '_', '-' or '.'"
            )
        owner = f"backbone '{self.name}'"
        if isinstance(self.build, str):
            if not _BUILD_PATH.fullmatch(self.build):
                raise _fail(owner, "build", f"must be 'module:function', got {self.build!r}")
        elif not callable(self.build):
            raise _fail(owner, "build", "must be a callable or a 'module:function' string")
        object.__setattr__(self, "input_shape", _as_shape(owner, self.input_shape))
        if self.preprocessing not in PREPROCESSING_SCHEMES:
            known = ", ".join(PREPROCESSING_SCHEMES)
            raise _fail(
                owner, "preprocessing", f"must be one of {known}; got {self.preprocessing!r}"
            )
        if self.feature_dim is not None and (
            isinstance(self.feature_dim, bool)
            or not isinstance(self.feature_dim, int)
            or self.feature_dim <= 0
        ):
            raise _fail(
                owner, "feature_dim", f"must be a positive integer, got {self.feature_dim!r}"
            )
        weights = tuple(self.weights)
        if not all(isinstance(w, WeightSource) for w in weights):
            raise _fail(owner, "weights", "must hold WeightSource records")
        names = [w.name for w in weights]
        if len(set(names)) != len(names):
            raise _fail(owner, "weights", f"names a weight source twice: {names}")
        object.__setattr__(self, "weights", weights)
        defaults = (
            (self.default_weights,)
            if isinstance(self.default_weights, str)
            else tuple(self.default_weights)
        )
        unknown = [name for name in defaults if name not in names]
        if unknown:
            raise _fail(
                owner,
                "default_weights",
                f"names weights it does not have: {', '.join(map(str, unknown))}",
            )
        object.__setattr__(self, "default_weights", defaults)
        blocks = (self.blocks,) if isinstance(self.blocks, str) else tuple(self.blocks)
        for pattern in blocks:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise _fail(
                    owner, "blocks", f"holds an invalid pattern {pattern!r}: {exc}"
                ) from None
        object.__setattr__(self, "blocks", blocks)
        modules = (
            (self.layer_modules,)
            if isinstance(self.layer_modules, str)
            else tuple(self.layer_modules)
        )
        for module in modules:
            if not isinstance(module, str) or not _MODULE.fullmatch(module):
                raise _fail(owner, "layer_modules", f"must hold module names, got {module!r}")
        object.__setattr__(self, "layer_modules", modules)
        object.__setattr__(
            self, "checkpoint_rename", _as_rules(owner, "checkpoint_rename", self.checkpoint_rename)
        )
        if not isinstance(self.build_options, Mapping):
            raise _fail(owner, "build_options", "must be a mapping of keyword arguments")
        object.__setattr__(self, "build_options", MappingProxyType(dict(self.build_options)))

    @property
    def build_path(self) -> str:
        """``build`` as a ``module:function`` string, for display and JSON."""
        if isinstance(self.build, str):
            return self.build
        return f"{self.build.__module__}:{self.build.__qualname__}"

    @property
    def carries_weights(self) -> bool:
        """True when the backbone comes from a model file, which holds trained weights."""
        return self.build_path == MODEL_FILE_BUILDER

    @property
    def model_modules(self) -> tuple[str, ...]:
        """The modules to import before loading a saved model of this backbone."""
        builder = self.build_path.partition(":")[0]
        return tuple(dict.fromkeys((*self.layer_modules, builder)))

    def resolve_build(self) -> Callable[..., Any]:
        """The build callable, importing its module now if it was given as a string."""
        if callable(self.build):
            return self.build
        try:
            target: Any = pkgutil.resolve_name(self.build)
        except (ImportError, AttributeError, ValueError) as exc:
            raise SpecError(
                f"backbone '{self.name}': cannot load its builder {self.build!r}: {exc}"
            ) from exc
        return target

    def default_weight(self, channels: int) -> str | None:
        """The default weights for inputs of ``channels`` channels, or None if it has none."""
        for name in self.default_weights:
            if self.weight(name).channels == channels:
                return name
        return self.default_weights[0] if self.default_weights else None

    def weight(self, name: str) -> WeightSource:
        """The named weight source; the error lists the ones that exist."""
        for source in self.weights:
            if source.name == name:
                return source
        known = ", ".join(w.name for w in self.weights) or "none"
        raise SpecError(
            f"backbone '{self.name}' has no weights named '{name}' (known: {known}); "
            "pass a file or checkpoint path instead"
        )

    @property
    def provider(self) -> str:
        """Who registered this spec, in words."""
        if self.registry_file and not self.plugin:
            return f"registry file {self.registry_file}"
        who = f"plugin {self.plugin}" if self.plugin else "unregistered"
        return f"{who} ({self.distribution})" if self.distribution else who

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the whole spec."""
        return {
            "name": self.name,
            "build": self.build_path,
            "build_options": dict(self.build_options),
            "input_shape": list(self.input_shape),
            "preprocessing": self.preprocessing,
            "feature_dim": self.feature_dim,
            "weights": [w.to_dict() for w in self.weights],
            "default_weights": list(self.default_weights),
            "blocks": list(self.blocks),
            "checkpoint_rename": [list(rule) for rule in self.checkpoint_rename],
            "description": self.description,
            "licence": self.licence,
            "citation": self.citation,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "layer_modules": list(self.layer_modules),
            "registry_file": self.registry_file,
        }


def _as_rules(owner: str, field_name: str, value: Any) -> tuple[tuple[str, str], ...]:
    """Validate (regex, replacement) pairs, as given in code or as YAML lists."""
    rules = []
    for rule in value or ():
        if isinstance(rule, str) or len(tuple(rule)) != 2:
            raise _fail(owner, field_name, f"must hold [pattern, replacement] pairs, got {rule!r}")
        pattern, replacement = (str(part) for part in rule)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _fail(owner, field_name, f"holds an invalid pattern {pattern!r}: {exc}") from None
        rules.append((pattern, replacement))
    return tuple(rules)


def _as_shape(owner: str, value: Any) -> tuple[int, int, int]:
    try:
        shape = tuple(value)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise _fail(
            owner,
            "input_shape",
            f"must be three positive integers (height, width, channels), got {value!r}",
        )
    return shape  # type: ignore[return-value]
