"""Options that several commands share, and turning their text into values.

Choices and defaults come from the core's own settings (FinetuneConfig, SynthConfig);
nothing here repeats them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from zoo.build import LoadRules, ModelFileOptions
from zoo.registry import Registry


def registry_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--registry FILE`` (repeatable): extra registry.yaml files to read."""
    return click.option(
        "--registry",
        "registries",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Extra registry.yaml file(s) of named backbones (repeatable).",
    )(command)


def registry(registries: Sequence[str]) -> Registry:
    """The process-wide registry, with the ``--registry`` files layered on a copy."""
    from zoo.plugin_loader import get_registry

    return get_registry(registries)


@dataclass(frozen=True)
class BackboneOptions:
    """zoo.create_backbone's options as the command line gives them."""

    weights: str | None
    model_file: ModelFileOptions
    rules: LoadRules


_BACKBONE_OPTIONS = (
    click.option(
        "--weights",
        "-w",
        help="Catalog weight name (imagenet), weights file or checkpoint; none for random.",
    ),
    click.option(
        "--skip", multiple=True, help="Regex of source variables not to load (repeatable)."
    ),
    click.option("--rename", multiple=True, help="PATTERN=REPLACEMENT from source to model names."),
    click.option("--strict", is_flag=True, help="Fail if any model variable is left unloaded."),
    click.option("--feature-layer", help="Cut a full model at this layer."),
    click.option("--input-tensor", help="Image input of a .meta graph, e.g. X:0."),
    click.option("--feature-tensor", help="Feature tensor of a .meta graph."),
    click.option("--signature", help="SavedModel signature (default serving_default)."),
    click.option("--output", "output_name", help="SavedModel signature output to use."),
    click.option("--unsafe", is_flag=True, help="Load .keras files with safe_mode off."),
)


def backbone_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add zoo.create_backbone's options; the command receives them as ``backbone_options``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        weights: str | None,
        skip: tuple[str, ...],
        rename: tuple[str, ...],
        strict: bool,
        feature_layer: str | None,
        input_tensor: str | None,
        feature_tensor: str | None,
        signature: str | None,
        output_name: str | None,
        unsafe: bool,
        **kwargs: Any,
    ) -> Any:
        options = BackboneOptions(
            weights=weights,
            model_file=ModelFileOptions(
                feature_layer=feature_layer,
                input_tensor=input_tensor,
                feature_tensor=feature_tensor,
                signature=signature,
                output=output_name,
                safe_mode=not unsafe,
            ),
            rules=LoadRules(
                skip=tuple(skip) or None,
                rename=tuple(_rename_rule(rule) for rule in rename),
                strict=strict,
            ),
        )
        return command(*args, backbone_options=options, **kwargs)

    for option in reversed(_BACKBONE_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def _rename_rule(rule: str) -> tuple[str, str]:
    pattern, sep, replacement = rule.partition("=")
    if not sep:
        raise click.BadParameter(f"{rule!r} is not PATTERN=REPLACEMENT", param_hint="--rename")
    return pattern, replacement


def parse_shape(
    text: str, option: str = "--input-shape", sizes: tuple[int, ...] = (2, 3)
) -> tuple[int, ...]:
    """'64', '64,64' or '64x64x3' as integers; the lengths allowed are ``sizes``."""
    try:
        values = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) not in sizes or min(values, default=0) <= 0:
        forms = {1: "H", 2: "H,W", 3: "H,W,C"}
        expected = " or ".join(forms[n] for n in sizes)
        raise click.BadParameter(f"{text!r} is not {expected}", param_hint=option)
    return values


def parse_list(text: str | None) -> tuple[str, ...] | None:
    """'g, r,i' as ('g', 'r', 'i'); None or nothing as None."""
    if not text:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip()) or None
