"""registry.yaml files: the packaged one, user files, and clear errors for bad entries."""

from __future__ import annotations

import textwrap

import pytest

from zoo import RegistryFileError, RegistryFileWarning, UnknownBackboneError, load_registry
from zoo.registry_file import builtin_specs, read_registry_file
from zoo.spec import MODEL_FILE_BUILDER

BUILTIN_NAMES = {
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50_v2",
    "inception_v3",
    "inception_resnet_v2",
    "inception_v4",
    "nasnet_mobile",
    "nasnet_large",
    "astro_cnn",
}


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_packaged_registry_file_holds_every_builtin_with_metadata():
    specs = {s.name: s for s in builtin_specs("zoo.plugins.resnet")}
    assert {"resnet50", "resnet101", "resnet152", "resnet50_v2"} <= set(specs)
    assert all(s.build_path.startswith("zoo.plugins.resnet:") for s in specs.values())
    resnet50 = specs["resnet50"]
    assert resnet50.input_shape == (224, 224, 3)
    assert resnet50.preprocessing == "caffe"
    assert resnet50.feature_dim == 2048
    imagenet = resnet50.weight("imagenet")
    assert imagenet.url.startswith("https://") and imagenet.checksum is not None
    assert imagenet.licence and resnet50.citation and "1512.03385" in resnet50.citation


def test_every_builtin_name_is_registered_by_a_plugin():
    registry = load_registry(entry_points=False, user_registry=False)
    names = {s.name for s in registry}
    assert BUILTIN_NAMES <= names
    for name in BUILTIN_NAMES:
        spec = registry.get(name)
        assert spec.plugin and spec.distribution == "zoo", name
        assert spec.citation, name


def test_user_registry_file_entries_of_all_three_kinds(tmp_path):
    (tmp_path / "ckpt").mkdir()
    path = write(
        tmp_path / "registry.yaml",
        """
        backbones:
          galaxy_saved:
            source: models/galaxies/3
            input_shape: [64, 64, 1]
            preprocessing: asinh
            options: {signature: serving_default}
          resnet50_lab:
            base: resnet50
            description: resnet50 with our lab's checkpoint
            weights:
              lab: ckpt/model.ckpt-20000
          coded:
            build: zoo.plugins.keras_applications:application
            options: {application: VGG16}
            input_shape: [32, 32, 3]
            feature_dim: 512
            weights:
              web: {url: "https://example.org/w.h5", sha256: "%s"}
        """
        % ("0" * 64),
    )
    registry = load_registry([path], entry_points=False, user_registry=False)

    saved = registry.get("galaxy_saved")
    assert saved.build_path == MODEL_FILE_BUILDER
    assert saved.build_options["source"] == str(tmp_path / "models" / "galaxies" / "3")
    assert saved.build_options["signature"] == "serving_default"
    assert saved.registry_file == str(path) and saved.plugin is None

    lab = registry.get("resnet50_lab")
    base = registry.get("resnet50")
    assert lab.build == base.build and lab.input_shape == base.input_shape
    assert {w.name for w in lab.weights} == {"imagenet", "lab"}
    assert lab.weight("lab").path == str(tmp_path / "ckpt" / "model.ckpt-20000")
    assert "registry file" in lab.provider

    assert registry.get("coded").weight("web").checksum == ("sha256", "0" * 64)


def test_user_registry_file_in_zoo_home_is_read(zoo_home):
    write(
        zoo_home / "registry.yaml",
        """
        backbones:
          home_net: {base: astro_cnn, input_shape: [96, 96, 5]}
        """,
    )
    registry = load_registry(entry_points=False)
    assert registry.get("home_net").input_shape == (96, 96, 5)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "backbones:\n  x: {base: resnet50, preprocesing: tf}\n",
            "entry 'x': field 'preprocesing'.*did you mean 'preprocessing'",
        ),
        ("backbones:\n  x: {build: 'a:b'}\n", "entry 'x': field 'input_shape' is required"),
        (
            "backbones:\n  x: {build: 'a:b', input_shape: [64, 64]}\n",
            "entry 'x': field 'input_shape'",
        ),
        (
            "backbones:\n  x: {build: 'a:b', input_shape: [8, 8, 3], preprocessing: vgg}\n",
            "entry 'x': field 'preprocessing'",
        ),
        (
            "backbones:\n  x: {build: 'a:b', base: resnet50, input_shape: [8, 8, 3]}\n",
            "entry 'x': field 'build'.*exactly one",
        ),
        ("backbones:\n  x: {input_shape: [8, 8, 3]}\n", "entry 'x': field 'build'"),
        (
            "backbones:\n  x: {base: resnet50, weights: {w: {url: 'ftp://a/b'}}}\n",
            "entry 'x': weights 'w': field 'url'",
        ),
        (
            "backbones:\n  x: {base: resnet50, weights: {w: {url: 'https://a/b', md5: xyz}}}\n",
            "entry 'x': weights 'w': field 'md5'",
        ),
        (
            "backbones:\n  x: {base: resnet50, weights: {w: {path: a, colour: red}}}\n",
            "entry 'x': field 'weights.w.colour'",
        ),
        (
            "backbones:\n  x: {base: resnet5}\n",
            "entry 'x': unknown backbone 'resnet5'; did you mean 'resnet50'",
        ),
        ("backbones:\n  x: {base: resnet50, override: maybe}\n", "entry 'x': field 'override'"),
        ("backbones:\n  x: [1, 2]\n", "entry 'x' must be a mapping"),
        ("models:\n  x: {base: resnet50}\n", "'backbones:'"),
        ("backbones:\n  x: {base: resnet50\n", "line 3.*not valid YAML"),
    ],
)
def test_bad_entries_name_file_entry_and_field(tmp_path, body, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(RegistryFileError, match=expected) as caught:
        load_registry([path], entry_points=False, user_registry=False)
    assert str(path) in str(caught.value)


def test_missing_registry_file_is_a_clear_error(tmp_path):
    with pytest.raises(RegistryFileError, match="does not exist"):
        list(read_registry_file(tmp_path / "nope.yaml"))


def test_registry_file_name_clash_needs_override(tmp_path):
    clash = write(tmp_path / "clash.yaml", "backbones:\n  resnet50: {base: resnet101}\n")
    with pytest.raises(Exception, match="resnet50.*duplicates.*plugin resnet"):
        load_registry([clash], entry_points=False, user_registry=False)
    allowed = write(
        tmp_path / "ok.yaml", "backbones:\n  resnet50: {base: resnet101, override: true}\n"
    )
    registry = load_registry([allowed], entry_points=False, user_registry=False)
    assert registry.get("resnet50").build_path.endswith(":resnet101")


def test_entries_may_build_on_earlier_entries_of_the_same_file(tmp_path):
    path = write(
        tmp_path / "chain.yaml",
        """
        backbones:
          first: {base: astro_cnn, input_shape: [48, 48, 1]}
          second: {base: first, preprocessing: none}
        """,
    )
    registry = load_registry([path], entry_points=False, user_registry=False)
    assert registry.get("second").input_shape == (48, 48, 1)
    with pytest.raises(UnknownBackboneError):
        registry.get("third")


def test_empty_registry_file_adds_nothing(tmp_path):
    path = write(tmp_path / "empty.yaml", "# nothing yet\n")
    assert list(read_registry_file(path)) == []


def test_a_user_registry_file_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"
    for fields in (
        f"build: os:system\n    options: {{command: 'touch {marker}'}}",
        "build: zoo.registry_file:read_registry_file",
        "base: astro_cnn\n    layer_modules: [antigravity]",
    ):
        path = write(
            tmp_path / "evil.yaml",
            f"backbones:\n  evil:\n    input_shape: [8, 8, 3]\n    {fields}\n",
        )
        with pytest.raises(RegistryFileError, match="entry 'evil'.*write a plugin"):
            load_registry([path], entry_points=False, user_registry=False)
    assert not marker.exists()


def test_a_broken_user_registry_file_is_a_warning_and_the_rest_works(zoo_home):
    write(zoo_home / "registry.yaml", "backbones:\n  mine: {base: astro_cnn}\n  broken: [1, 2\n")
    with pytest.warns(RegistryFileWarning, match="registry.yaml.*not valid YAML.*unavailable"):
        registry = load_registry(entry_points=False)
    assert "resnet50" in registry and "mine" not in registry
