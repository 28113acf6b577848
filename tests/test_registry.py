"""The registry and the plugin loader: provenance, duplicates, broken plugins, suggestions."""

from __future__ import annotations

import warnings

import pytest

import zoo
from helpers import write_distribution
from zoo import (
    BackboneSpec,
    DuplicateBackboneError,
    PluginError,
    PluginWarning,
    Registry,
    UnknownBackboneError,
    load_registry,
)

SPEC = BackboneSpec(name="mine", build="m:f", input_shape=(8, 8, 3))

GOOD_PLUGIN = """
from zoo import BackboneSpec, hookimpl

@hookimpl
def register_backbones(register):
    register(BackboneSpec(name="galaxy_net", build="galaxy_plugin:build", input_shape=(64, 64, 1)))
"""


def test_register_stamps_provenance_and_get_returns_it():
    registry = Registry()
    registry.register(SPEC, plugin="mine_plugin", distribution="mine-dist")
    spec = registry.get("mine")
    assert (spec.plugin, spec.distribution) == ("mine_plugin", "mine-dist")
    assert spec.provider == "plugin mine_plugin (mine-dist)"
    assert "mine" in registry and len(registry) == 1


def test_duplicates_name_both_plugins_unless_overriding():
    registry = Registry()
    registry.register(SPEC, plugin="first", distribution="dist-a")
    with pytest.raises(DuplicateBackboneError, match="plugin second.*duplicates.*plugin first"):
        registry.register(SPEC, plugin="second", distribution="dist-b")
    registry.register(SPEC, plugin="second", distribution="dist-b", override=True)
    assert registry.get("mine").plugin == "second"


def test_unknown_name_suggests_near_misses():
    registry = load_registry(entry_points=False, user_registry=False)
    with pytest.raises(UnknownBackboneError) as caught:
        registry.get("resnet5")
    message = str(caught.value)
    assert (
        message.startswith("unknown backbone 'resnet5'; did you mean ") and "'resnet50'" in message
    )
    with pytest.raises(UnknownBackboneError, match="did you mean 'inception_v3'"):
        registry.get("Inception_V3")
    with pytest.raises(UnknownBackboneError, match="zoo list"):
        registry.get("qwertyuiop")


def test_fnmatch_listing_is_sorted():
    registry = load_registry(entry_points=False, user_registry=False)
    names = [s.name for s in registry.specs("resnet*")]
    assert names == sorted(names) and {"resnet50", "resnet101"} <= set(names)
    assert all(name.startswith("resnet") for name in names)
    assert [s.name for s in registry.specs("*nasnet_[lm]*")] == ["nasnet_large", "nasnet_mobile"]
    assert registry.specs("nothing*") == []


def test_entry_point_plugin_registers_with_its_distribution(tmp_path, monkeypatch):
    site = write_distribution(
        tmp_path / "site",
        "galaxy-plugin",
        {"galaxy": "galaxy_plugin"},
        {"galaxy_plugin.py": GOOD_PLUGIN},
    )
    monkeypatch.syspath_prepend(str(site))
    registry = load_registry(user_registry=False)
    spec = registry.get("galaxy_net")
    assert (spec.plugin, spec.distribution) == ("galaxy", "galaxy-plugin")
    info = next(p for p in registry.plugins if p.name == "galaxy")
    assert info.backbones == ("galaxy_net",) and info.version == "1.0" and not info.builtin


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import zoo_no_such_dependency\n", "ModuleNotFoundError"),
        (
            "from zoo import hookimpl\n@hookimpl\ndef register_backbones(register):\n"
            "    raise RuntimeError('weights server down')\n",
            "weights server down",
        ),
        (
            "from zoo import hookimpl\n@hookimpl\ndef register_backbones(register, extra):\n    pass\n",
            "extra",
        ),
        (
            "from zoo import hookimpl\n@hookimpl\ndef register_backbones(register):\n"
            "    register('not a spec')\n",
            "takes a zoo.BackboneSpec",
        ),
    ],
)
def test_broken_plugin_is_a_warning_naming_it(tmp_path, monkeypatch, source, problem):
    site = write_distribution(
        tmp_path / "site", "broken-dist", {"broken": "broken_plugin"}, {"broken_plugin.py": source}
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.warns(PluginWarning, match=f"plugin 'broken' \\(from broken-dist\\).*{problem}"):
        registry = load_registry(user_registry=False)
    assert "resnet50" in registry  # everything else still works
    info = next(p for p in registry.plugins if p.name == "broken")
    assert info.error and info.backbones == ()


def test_strict_mode_makes_a_broken_plugin_fatal(tmp_path, monkeypatch):
    site = write_distribution(
        tmp_path / "site",
        "broken-dist",
        {"broken": "broken_plugin"},
        {"broken_plugin.py": "raise ImportError('no tensorflow_addons')\n"},
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(
        PluginError, match="plugin 'broken'.*no tensorflow_addons.*ZOO_STRICT_PLUGINS"
    ):
        load_registry(user_registry=False)


def test_a_failing_plugin_keeps_none_of_its_backbones(tmp_path, monkeypatch):
    source = """
    from zoo import BackboneSpec, hookimpl

    @hookimpl
    def register_backbones(register):
        register(BackboneSpec(name="half_done", build="m:f", input_shape=(8, 8, 3)))
        raise ValueError("second backbone failed")
    """
    site = write_distribution(
        tmp_path / "site", "half", {"half": "half_plugin"}, {"half_plugin.py": source}
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.warns(PluginWarning, match="second backbone failed"):
        registry = load_registry(user_registry=False)
    assert "half_done" not in registry


def test_plugin_duplicating_a_builtin_warns_naming_both_or_overrides(tmp_path, monkeypatch):
    dup = """
    from zoo import BackboneSpec, hookimpl

    @hookimpl
    def register_backbones(register):
        register(BackboneSpec(name="resnet50", build="m:f", input_shape=(8, 8, 3)), override=%s)
    """
    site = write_distribution(
        tmp_path / "site",
        "dup-dist",
        {"dup": "dup_plugin", "over": "over_plugin"},
        {"dup_plugin.py": dup % "False", "over_plugin.py": dup % "True"},
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.warns(PluginWarning) as caught:
        registry = load_registry(user_registry=False)
    messages = [str(w.message) for w in caught]
    assert any(
        "plugin dup (dup-dist) duplicates" in m and "plugin resnet (zoo)" in m for m in messages
    )
    assert registry.get("resnet50").plugin == "over"


def test_plugins_load_once_and_lazily(monkeypatch, tmp_path):
    calls = []
    real = zoo.plugin_loader.load_plugins

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(zoo.plugin_loader, "load_plugins", counting)
    assert calls == []
    zoo.get_spec("resnet50")
    zoo.list_backbones("inception*")
    extra = tmp_path / "extra.yaml"
    extra.write_text("backbones:\n  extra_net: {base: astro_cnn}\n")
    layered = zoo.get_registry([extra])  # registry files are layered, plugins not reloaded
    assert "extra_net" in layered and "extra_net" not in zoo.get_registry()
    assert calls == [1]


def test_a_clean_load_emits_no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_registry(user_registry=False)
