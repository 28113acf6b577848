"""Loading a weights file into a model by name, with a report of every variable.

One loop for every format: each tensor of the file is skipped (``skip`` patterns), or
renamed (the plugin's rules for TF1 names, then the user's) and matched to a model
variable; shapes are checked, and a first convolution given another number of input
channels is adapted. Nothing is assigned unless the whole load is acceptable, so a
failed strict load leaves the model as it was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import WeightsError
from zoo.weights.formats import WeightFile, open_weights
from zoo.weights.report import LoadReport

#: Left out by default, as the transfer-learning recipes do: the old classifier and the
#: step counter.
DEFAULT_SKIP: tuple[str, ...] = ("(?i)logits", "global_step")

Rule = tuple[str, str]


def load_weights(
    model: Any,
    path: str | Path,
    *,
    skip: Sequence[str] | None = None,
    rename: Sequence[Rule] = (),
    plugin_rules: Sequence[Rule] = (),
    strict: bool = False,
    channels: int | None = None,
) -> LoadReport:
    """Load the weights at ``path`` into ``model`` and report what happened.

    ``channels`` is the number of image channels the model takes: a convolution kernel
    that reads that many channels but was trained on another number is adapted.
    """
    with open_weights(path) as weights:
        return load_from(
            model,
            weights,
            skip=DEFAULT_SKIP if skip is None else tuple(skip),
            rules=(*(plugin_rules if weights.name_based else ()), *rename),
            strict=strict,
            channels=channels,
        )


def load_from(
    model: Any,
    weights: WeightFile,
    *,
    skip: Sequence[str],
    rules: Sequence[Rule],
    strict: bool,
    channels: int | None,
) -> LoadReport:
    report = LoadReport(source=weights.path, kind=weights.kind)
    targets = weights.model_keys(model)
    skip_patterns = [re.compile(p) for p in skip]
    compiled_rules = [(re.compile(p), r) for p, r in rules]
    assignments: list[tuple[Any, np.ndarray]] = []
    loaded: set[int] = set()

    for key in sorted(weights.shapes):
        if any(p.search(key) for p in skip_patterns):
            report.skipped.append(key)
            continue
        name = key
        for pattern, replacement in compiled_rules:
            name = pattern.sub(replacement, name)
        variable = targets.get(name)
        if variable is None:
            report.unexpected.append(key)
            continue
        source_shape = tuple(weights.shapes[key])
        target_shape = tuple(variable.shape)
        label = _label(variable, name)
        value = None
        if source_shape == target_shape:
            value = weights.read(key)
        else:
            adapted = _adapt_channels(weights.read(key), target_shape, channels)
            if adapted is not None:
                value, how = adapted
                report.adapted.append((label, how))
        if value is None:
            report.shape_mismatched.append((label, source_shape, target_shape))
            continue
        assignments.append((variable, value))
        loaded.add(id(variable))
        report.matched.append((label, key))

    report.missing = [_label(v, v.path) for v in model.weights if id(v) not in loaded]
    report.notes += [f"{key}: ignored, {why}" for key, why in sorted(weights.ignored.items())]
    _check(report, weights, targets, strict)
    for variable, value in assignments:
        variable.assign(value.astype(_numpy_dtype(variable)))
    return report


def _check(report: LoadReport, weights: WeightFile, targets: dict[str, Any], strict: bool) -> None:
    if not report.matched and report.shape_mismatched:
        examples = "; ".join(
            f"{name}: source {list(s)} vs model {list(m)}"
            for name, s, m in report.shape_mismatched[:3]
        )
        raise WeightsError(
            f"nothing in {weights.kind} {weights.path} could be loaded: the names match but the "
            f"shapes differ ({examples}); are these weights for another size of this network?"
        )
    if not report.matched:
        ours = ", ".join(sorted(targets)[:3]) or "none"
        theirs = ", ".join(k for k in sorted(weights.shapes)[:3]) or "none"
        raise WeightsError(
            f"no variable of {weights.kind} {weights.path} matched the model "
            f"(the file has e.g. {theirs}; the model expects e.g. {ours}); "
            "add rename rules (pattern=replacement) to map the names"
        )
    if strict and not report.complete:
        problems = [f"missing {name}" for name in report.missing[:5]] + [
            f"{name}: source {list(s)} vs model {list(m)}"
            for name, s, m in report.shape_mismatched[:5]
        ]
        raise WeightsError(
            f"strict load of {weights.kind} {weights.path} failed: "
            f"{len(report.missing)} missing, {len(report.shape_mismatched)} shape-mismatched "
            f"({'; '.join(problems)}); nothing was loaded"
        )


def _adapt_channels(
    value: np.ndarray, target: tuple[int, ...], channels: int | None
) -> tuple[np.ndarray, str] | None:
    """A first-convolution kernel for another number of input channels, or None.

    The kernel's input channels are averaged and the mean repeated, scaled by
    old/new channels, so that an image whose channels are all equal gives the same
    response as before (e.g. a grey image fed to an RGB network).
    """
    if channels is None or value.ndim != 4 or len(target) != 4 or target[2] != channels:
        return None
    if value.shape[:2] != target[:2] or value.shape[3] != target[3]:
        return None
    old, new = value.shape[2], channels
    mean = value.mean(axis=2, keepdims=True) * (old / new)
    return np.repeat(mean, new, axis=2), (
        f"first convolution: the {old} input-channel kernels averaged, repeated for {new} "
        f"channels and scaled by {old}/{new}"
    )


def _label(variable: Any, fallback: str) -> str:
    return getattr(variable, "path", None) or fallback


def _numpy_dtype(variable: Any) -> str:
    dtype = variable.dtype
    return getattr(dtype, "name", None) or str(dtype)
