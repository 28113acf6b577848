"""The wheel: namespaced import names, the catalog as package data, the console script."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from helpers import REPO


def test_wheel_installs_only_namespaced_packages(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("zoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names}
    assert top_level == {"zoo", next(n for n in top_level if n.endswith(".dist-info"))}
    assert "zoo/plugins/resnet.py" in names and "zoo/serve/__init__.py" in names
    catalog = zipfile.ZipFile(wheel).read("zoo/registry.yaml").decode()
    assert catalog == (REPO / "registry.yaml").read_text()
    for weights in ("astro_cnn_sim3.weights.h5", "astro_cnn_sim1.weights.h5"):
        shipped = zipfile.ZipFile(wheel).read(f"zoo/pretrained/{weights}")
        assert shipped == (REPO / "zoo" / "pretrained" / weights).read_bytes()
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "zoo = zoo.cli:main" in entry_points
