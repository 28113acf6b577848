"""Verification of an exported version, in a process that imports TensorFlow and not zoo.

After every export (and on demand, ``zoo export --check VERSION``) the version is
loaded by ``standalone_check.py`` in a fresh interpreter; its signatures run on sample
inputs, and what comes back is compared with what the in-process model said for the
same inputs (or, without it, checked for sound probabilities and for signatures that
agree with each other). The graph's ops are listed: Python-only ops and custom ops are
refused, because TF Serving's C++ runtime cannot run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ExportError, one_line
from zoo.export.signatures import METHODS

SCRIPT = Path(__file__).with_name("standalone_check.py")
TOLERANCE = 1e-4
TIMEOUT = 600

Inputs = Mapping[str, Mapping[str, Any]]  # signature -> input name -> array or list of bytes
Outputs = Mapping[str, Mapping[str, np.ndarray]]  # signature -> output name -> array


@dataclass
class CheckReport:
    """What the clean process found: signatures, ops, differences, and any problems."""

    version: Path
    signatures: list[str]
    methods: dict[str, str]
    ops: list[str]
    differences: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        signatures = ", ".join(f"{s} ({self.methods.get(s, '?')})" for s in self.signatures)
        lines = [
            f"{self.version}: {'ok' if self.ok else 'FAILED'}",
            f"signatures: {signatures}",
            f"ops: {len(self.ops)}, all TensorFlow's own" if self.ok else f"ops: {len(self.ops)}",
        ]
        lines += [
            f"max |difference| {name}: {value:.2e}" for name, value in self.differences.items()
        ]
        return lines + [f"problem: {problem}" for problem in self.problems]


def check_version(
    version: Path, inputs: Inputs, expected: Outputs | None = None, labels: list[str] | None = None
) -> CheckReport:
    """Run ``inputs`` through the version in a clean process; compare with ``expected``."""
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as scratch:
        folder = Path(scratch)
        np.savez(folder / "inputs.npz", **_flatten(inputs))
        command = [
            sys.executable,
            "-I",  # no user site, no PYTHONPATH, not the script's folder: TensorFlow alone
            str(SCRIPT),
            str(Path(version).resolve()),
            str(folder / "inputs.npz"),
            str(folder / "outputs.npz"),
            str(folder / "report.json"),
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        try:
            done = subprocess.run(
                command, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise ExportError(f"{version}: the clean-process check took over {TIMEOUT} s") from None
        if done.returncode != 0:
            last = one_line(Exception(done.stderr.strip().splitlines()[-1] if done.stderr else "?"))
            raise ExportError(f"{version} does not load or run without zoo: {last}")
        found = json.loads((folder / "report.json").read_text())
        outputs: dict[str, dict[str, np.ndarray]] = {}
        if found["error"] is None:
            stored = np.load(folder / "outputs.npz")
            for key in stored.files:
                signature, name = key.split("/")
                outputs.setdefault(signature, {})[name] = stored[key]
    report = CheckReport(Path(version), found["signatures"], found["methods"], found["ops"])
    _judge(report, found, outputs, expected, labels)
    return report


def _judge(
    report: CheckReport,
    found: dict[str, Any],
    outputs: dict[str, dict[str, np.ndarray]],
    expected: Outputs | None,
    labels: list[str] | None,
) -> None:
    problems = report.problems
    if found["python_ops"]:
        problems.append(
            f"Python-only ops, which TF Serving cannot run: {', '.join(found['python_ops'])}"
        )
    if found["custom_ops"]:
        problems.append(f"ops outside TensorFlow's standard set: {', '.join(found['custom_ops'])}")
    if found["error"]:
        problems.append(f"it does not load or run without zoo: {found['error']}")
        return
    if found["zoo_modules_imported"]:
        problems.append(f"the check imported zoo: {', '.join(found['zoo_modules_imported'])}")
    for signature, method in METHODS.items():
        if signature in report.methods and report.methods[signature] != method:
            problems.append(f"{signature} has method {report.methods[signature]}, not {method}")
    for signature, values in outputs.items():
        probabilities = values.get("probabilities")
        if "top_labels" in values and (  # a softmax over classes
            not np.isfinite(probabilities).all()
            or np.abs(probabilities.sum(axis=1) - 1).max() > 1e-3
        ):
            problems.append(f"{signature}: probabilities are not finite rows summing to 1")
        names = values.get("top_labels", values.get("classes"))
        if labels is not None and names is not None and not set(names.ravel()) <= set(labels):
            problems.append(f"{signature}: labels outside the run's own")
    reference = expected or _first_signature_as_reference(outputs)
    for signature, values in reference.items():
        for name, want in values.items():
            got = outputs.get(signature, {}).get(name)
            if got is None:
                problems.append(f"{signature}: no output '{name}'")
            elif want.dtype.kind in "fc":
                difference = float(np.abs(got - want).max()) if want.size else 0.0
                report.differences[f"{signature}/{name}"] = difference
                if difference > TOLERANCE:
                    problems.append(
                        f"{signature}/{name} differs from the model by {difference:.2e} "
                        f"(tolerance {TOLERANCE:g})"
                    )
            elif not np.array_equal(got, want):
                problems.append(f"{signature}/{name} differs from the model")


def _first_signature_as_reference(outputs: dict[str, dict[str, np.ndarray]]) -> Outputs:
    """Without the model at hand: every predict signature must agree with serving_default."""
    base = outputs.get("serving_default", {})
    agreeing = {
        name: {key: base[key] for key in _TASK_OUTPUTS if key in base}
        for name in outputs
        if name != "serving_default" and name not in METHODS
    }
    if "classify" in outputs and "top_scores" in base:
        agreeing["classify"] = {"scores": base["top_scores"]}
    return agreeing


#: The predict outputs every task's signatures must agree on (zoo.tasks).
_TASK_OUTPUTS = ("probabilities", "predictions", "fractions")


def _flatten(inputs: Inputs) -> dict[str, np.ndarray]:
    """Inputs as plain arrays for an .npz: a list of bytes becomes their concatenation and offsets."""
    flat: dict[str, np.ndarray] = {}
    for signature, arguments in inputs.items():
        for name, value in arguments.items():
            key = f"{signature}/{name}"
            if isinstance(value, list):
                flat[f"{key}/bytes"] = np.frombuffer(b"".join(value), dtype=np.uint8)
                flat[f"{key}/offsets"] = np.cumsum([0, *map(len, value)])
            else:
                flat[key] = np.asarray(value)
    return flat


def warmup_inputs(version: Path) -> Inputs:
    """The inputs recorded in a version's warmup file, per signature."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from zoo.export.manifest import IMAGE_FEATURE, WARMUP

    inputs: dict[str, dict[str, Any]] = {}
    for record in tf.data.TFRecordDataset(str(Path(version) / WARMUP)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.HasField("classify_log") or log.HasField("regress_log"):
            kind = "classify_log" if log.HasField("classify_log") else "regress_log"
            request = getattr(log, kind).request
            examples = [e.SerializeToString() for e in request.input.example_list.examples]
            assert all(
                IMAGE_FEATURE in e.features.feature for e in request.input.example_list.examples
            )
            inputs[request.model_spec.signature_name] = {"inputs": examples}
        else:
            request = log.predict_log.request
            arguments: dict[str, Any] = {}
            for name, proto in request.inputs.items():
                value = tf.make_ndarray(proto)
                arguments[name] = list(value) if value.dtype == object else value
            inputs[request.model_spec.signature_name] = arguments
    return inputs
