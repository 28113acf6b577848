"""BackboneSpec and WeightSource: plain data, validated, lazily resolved builders."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from zoo import BackboneSpec, SpecError, WeightSource


def test_only_name_build_and_input_shape_are_required():
    spec = BackboneSpec(name="mine", build="mypkg.nets:build", input_shape=[64, 64, 1])
    assert spec.input_shape == (64, 64, 1)
    assert spec.preprocessing == "none"
    assert spec.weights == () and spec.blocks == ()
    assert spec.plugin is None and spec.distribution is None


def test_spec_is_frozen():
    spec = BackboneSpec(name="mine", build="mypkg.nets:build", input_shape=(8, 8, 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.build_options["x"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "has space"}, "name"),
        ({"build": "no_colon"}, "build"),
        ({"build": 42}, "build"),
        ({"input_shape": (64, 64)}, "input_shape"),
        ({"input_shape": (64, -1, 3)}, "input_shape"),
        ({"preprocessing": "imagenet"}, "preprocessing"),
        ({"feature_dim": 0}, "feature_dim"),
        ({"blocks": ("conv[",)}, "blocks"),
    ],
)
def test_invalid_fields_are_named(changes, field):
    fields = {"name": "mine", "build": "m:f", "input_shape": (8, 8, 3), **changes}
    with pytest.raises(SpecError, match=field):
        BackboneSpec(**fields)


def test_build_string_is_resolved_lazily_and_errors_name_the_backbone():
    spec = BackboneSpec(name="lazy", build="zoo_nonexistent_module:build", input_shape=(8, 8, 3))
    assert "zoo_nonexistent_module" not in sys.modules
    with pytest.raises(SpecError, match="lazy.*zoo_nonexistent_module"):
        spec.resolve_build()
    resolved = BackboneSpec(name="ok", build="os.path:join", input_shape=(8, 8, 3)).resolve_build()
    assert resolved("a", "b").endswith("b")


def test_callable_build_is_shown_as_a_module_path():
    def build(shape):
        return shape

    spec = BackboneSpec(name="c", build=build, input_shape=(8, 8, 3))
    assert spec.resolve_build() is build
    assert spec.build_path.endswith(":test_callable_build_is_shown_as_a_module_path.<locals>.build")


def test_weight_sources_need_exactly_one_location_and_valid_checksums():
    with pytest.raises(SpecError, match="'url' or 'path'"):
        WeightSource(name="w")
    with pytest.raises(SpecError, match="not both|'url' or 'path'"):
        WeightSource(name="w", url="https://x/y.h5", path="/tmp/y.h5")
    with pytest.raises(SpecError, match="sha256"):
        WeightSource(name="w", url="https://x/y.h5", sha256="abc")
    with pytest.raises(SpecError, match="url"):
        WeightSource(name="w", url="ftp://x/y.h5")
    strong = WeightSource(name="w", url="https://x/y.h5", sha256="a" * 64, md5="b" * 32)
    assert strong.checksum == ("sha256", "a" * 64)
    assert WeightSource(name="w", url="https://x/y.h5", md5="b" * 32).checksum == ("md5", "b" * 32)
    assert WeightSource(name="w", path="/tmp/y.h5").checksum is None


def test_unknown_weight_name_lists_the_known_ones():
    spec = BackboneSpec(
        name="mine",
        build="m:f",
        input_shape=(8, 8, 3),
        weights=(WeightSource(name="imagenet", path="/w.h5"),),
    )
    assert spec.weight("imagenet").path == "/w.h5"
    with pytest.raises(SpecError, match="no weights named 'imagenett'.*imagenet"):
        spec.weight("imagenett")


def test_duplicate_weight_names_are_rejected():
    twice = (WeightSource(name="a", path="/1"), WeightSource(name="a", path="/2"))
    with pytest.raises(SpecError, match="twice"):
        BackboneSpec(name="mine", build="m:f", input_shape=(8, 8, 3), weights=twice)


def test_to_dict_is_json_ready_plain_data():
    import json

    spec = BackboneSpec(
        name="mine",
        build="m:f",
        input_shape=(8, 8, 3),
        build_options={"width": 4},
        weights=(WeightSource(name="a", url="https://h/a.h5", md5="0" * 32),),
    )
    data = json.loads(json.dumps(spec.to_dict()))
    assert data["input_shape"] == [8, 8, 3]
    assert data["build_options"] == {"width": 4}
    assert data["weights"] == [{"name": "a", "url": "https://h/a.h5", "md5": "0" * 32}]
