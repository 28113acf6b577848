"""Deployment files from `zoo serve --emit`: valid by the Compose specification's schema and
Kubernetes' resource schemas, with the right ports, paths and images; deploy/ is what the
command writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO, run_zoo
from zoo.serve.config import read_model_config
from zoo.serve.server_files import BatchingOptions

BIN = Path(sys.executable).parent


def validate_compose(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def validate_k8s(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def models_base(root: Path) -> Path:
    """A base folder as `zoo export` lays it out (the files' contents do not matter here)."""
    version = root / "models" / "galaxies" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    return root / "models"


def emit(root: Path, kind: str, *flags: str) -> Path:
    out = root / "deploy" / kind
    done = run_zoo("serve", str(root / "models"), "--emit", kind, "--emit-to", str(out), *flags)
    assert done.returncode == 0, done.stderr
    return out


def test_compose_for_a_gpu_fleet_validates_and_mounts_the_models(tmp_path):
    base = models_base(tmp_path)
    out = emit(tmp_path, "compose", "--gpu", "--batching")
    compose = out / "compose.yaml"
    done = validate_compose(compose)
    assert done.returncode == 0, done.stdout + done.stderr
    service = yaml.safe_load(compose.read_text())["services"]["tfserving"]
    assert service["image"] == "tensorflow/serving:latest-gpu"
    assert service["ports"] == ["127.0.0.1:8500:8500", "127.0.0.1:8501:8501"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    mounts = {m["target"]: m for m in service["volumes"]}
    assert all(m["read_only"] for m in mounts.values())
    assert (out / mounts["/models/galaxies"]["source"]).resolve() == base / "galaxies"
    assert (out / mounts["/config"]["source"]).resolve() == out / "config"
    flags = dict(f[2:].split("=", 1) for f in service["command"])
    assert flags["model_config_file"] == "/config/models.config"
    assert flags["enable_grpc_healthcheck_service"] == "true"
    assert flags["enable_batching"] == "true"
    (model,) = read_model_config(out / "config" / "models.config")
    assert (model.name, str(model.base_path)) == ("galaxies", "/models/galaxies")
    assert BatchingOptions.from_file(out / "config" / "batching.config").max_batch_size == 32

    models_base(tmp_path / "cpu")
    cpu = emit(tmp_path / "cpu", "compose")
    plain = yaml.safe_load((cpu / "compose.yaml").read_text())["services"]["tfserving"]
    assert plain["image"] == "tensorflow/serving:latest" and "deploy" not in plain
    assert not (cpu / "config" / "batching.config").exists()


def test_kubernetes_manifests_validate_with_gpu_requests_probes_and_an_autoscaler(tmp_path):
    models_base(tmp_path)
    out = emit(
        tmp_path, "k8s", "--gpu", "--port", "9000", "--rest-port", "9001", "--intra-op-threads", "1"
    )
    files = sorted(out.glob("*.yaml"))
    done = validate_k8s(*files)
    assert done.returncode == 0, done.stdout + done.stderr
    docs = {yaml.safe_load(f.read_text())["kind"]: yaml.safe_load(f.read_text()) for f in files}
    assert set(docs) == {
        "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "HorizontalPodAutoscaler"
    }  # fmt: skip
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "tensorflow/serving:latest-gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "grpc": 9000,
        "http": 9001,
    }
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"]["port"] == 9000  # the standard gRPC health service
    assert "--enable_grpc_healthcheck_service=true" in container["args"]
    assert "--port=9000" in container["args"] and "--rest_api_port=9001" in container["args"]
    assert "--tensorflow_intra_op_parallelism=1" in container["args"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
    assert volumes["config"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert 'base_path: "/models/galaxies"' in docs["ConfigMap"]["data"]["models.config"]
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in docs["Service"]["spec"]["ports"]}
    assert ports == {"grpc": (9000, "grpc"), "http": (9001, "http")}
    assert (
        docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    )
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (
        "Deployment",
        docs["Deployment"]["metadata"]["name"],
    )


def test_the_validators_reject_broken_files(tmp_path):
    """The checks above can fail: a port that is not a number, a probe on a missing field."""
    models_base(tmp_path)
    compose = emit(tmp_path, "compose") / "compose.yaml"
    broken = yaml.safe_load(compose.read_text())
    broken["services"]["tfserving"]["restart"] = ["sometimes"]
    compose.write_text(yaml.safe_dump(broken))
    assert validate_compose(compose).returncode != 0
    deployment = emit(tmp_path, "k8s") / "deployment.yaml"
    broken = yaml.safe_load(deployment.read_text())
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "grpc"
    deployment.write_text(yaml.safe_dump(broken))
    assert validate_k8s(deployment).returncode != 0


def test_emit_never_overwrites_a_changed_file_without_force(tmp_path):
    models_base(tmp_path)
    out = emit(tmp_path, "compose")
    (out / "compose.yaml").write_text("# my own edits\n")
    again = run_zoo("serve", str(tmp_path / "models"), "--emit", "compose", "--emit-to", str(out))
    assert again.returncode == 1 and "compose.yaml" in again.stderr and "--force" in again.stderr
    assert (out / "compose.yaml").read_text() == "# my own edits\n"
    emit(tmp_path, "compose", "--force")
    assert validate_compose(out / "compose.yaml").returncode == 0


@pytest.mark.parametrize("kind", ["compose", "k8s"])
def test_deploy_folder_is_what_zoo_serve_emit_writes(tmp_path, kind):
    """deploy/ holds the files for `zoo serve models/ --emit KIND --gpu --batching`, from the
    repository's root; they validate."""
    models_base(tmp_path)
    out = emit(tmp_path, kind, "--gpu", "--batching")
    written = {p.relative_to(out): p.read_text() for p in out.rglob("*") if p.is_file()}
    committed = REPO / "deploy" / kind
    kept = {p.relative_to(committed): p.read_text() for p in committed.rglob("*") if p.is_file()}
    assert kept == written
    if kind == "compose":
        assert validate_compose(committed / "compose.yaml").returncode == 0
    else:
        assert validate_k8s(*sorted(committed.glob("*.yaml"))).returncode == 0


def test_the_kubernetes_training_job_validates_and_its_tf_config_names_its_services():
    """deploy/training/: a Service and a Job per worker, TF_CONFIG from the Services'
    addresses, one shared claim; what zoo.train.k8s.training_job writes."""
    from zoo.train.cluster import read_cluster
    from zoo.train.k8s import training_job

    args = ["astro_cnn", "/work/galaxies", "--out", "/work/runs/galaxies",
            "--export", "/work/models", "--name", "galaxies"]  # fmt: skip
    written = training_job(2, args)
    committed = REPO / "deploy" / "training"
    assert {p.name: p.read_text() for p in committed.glob("*.yaml")} == written
    done = validate_k8s(*sorted(committed.glob("*.yaml")))
    assert done.returncode == 0, done.stdout + done.stderr
    claim = yaml.safe_load(written["volume.yaml"])["metadata"]["name"]
    for index in range(2):
        service = yaml.safe_load(written[f"service-{index}.yaml"])
        job = yaml.safe_load(written[f"job-{index}.yaml"])
        pod = job["spec"]["template"]
        assert service["spec"]["selector"] == pod["metadata"]["labels"]
        (container,) = pod["spec"]["containers"]
        assert container["command"] == ["zoo", "finetune", *args]
        (env,) = container["env"]
        cluster = read_cluster({"TF_CONFIG": env["value"]})
        assert cluster.rank == index and cluster.size == 2
        port = service["spec"]["ports"][0]["port"]
        assert cluster.address == f"{service['metadata']['name']}:{port}"
        assert container["ports"][0]["containerPort"] == port
        assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    assert len(training_job(3, args)) == 7
