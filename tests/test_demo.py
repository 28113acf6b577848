"""`zoo demo`, as a new user runs it: the whole path, a table that must agree with the run,
the lines it prints to try, and no process left behind however it ends."""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import subprocess
import time
import urllib.request

import pytest

from helpers import ZOO_SCRIPT, free_port, processes_mentioning, wait_until_gone
from zoo.cli.quiet import CPP_LOG_LINE


def read_until(process: subprocess.Popen, marker: str, timeout: float) -> list[str]:
    """Lines of ``process`` up to the one containing ``marker``."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("the demo ended early:\n" + "".join(lines))
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in {timeout} s:\n" + "".join(lines))


@pytest.mark.subprocess
@pytest.mark.train
def test_zoo_demo_serves_what_the_run_measured_and_stops_its_server(tmp_path):
    workdir = tmp_path / "demo"
    port, rest_port = free_port(), free_port()
    demo = subprocess.Popen(
        [str(ZOO_SCRIPT), "demo", "--workdir", str(workdir), "--per-class", "40", "--size", "48",
         "--port", str(port), "--rest-port", str(rest_port), "--keep-serving"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "ZOO_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    try:
        lines = read_until(demo, "serving until Ctrl-C", timeout=900)
        output = "".join(lines)
        for step in range(1, 6):
            assert f"[{step}/5]" in output
        # quiet, as a newcomer's first command should be: zoo's own lines, none of Keras's
        # warnings or TensorFlow's C++ log, and the plan the defaults chose
        assert not any(CPP_LOG_LINE.match(line.encode()) for line in lines), output
        assert "Warning" not in output and "warning" not in output
        assert "plan: auto: pretrained weights (simulated)" in output
        result = json.loads((workdir / "demo.json").read_text())
        measured = json.loads((workdir / "run" / "metrics_test.json").read_text())
        # the served answers, one gRPC request per held-out image, give the run's own metrics
        assert result["served_confusion"] == measured["confusion"] and result["agrees"]
        assert result["images"] == measured["count"] >= 20
        assert measured["accuracy"] >= 0.6  # four classes: chance is 0.25
        assert f"{measured['accuracy']:.3f}" in next(ln for ln in lines if "  all  " in ln)
        assert result["latency_ms"]["p50"] > 0 and "p99" in output
        assert (workdir / "models" / "galaxies" / "1" / "saved_model.pb").is_file()
        assert (workdir / "run" / "learning_curves.png").is_file()

        # the lines it prints to try work as printed, from other processes
        predict = next(ln.strip() for ln in lines if ln.strip().startswith("zoo predict"))
        done = subprocess.run(
            [str(ZOO_SCRIPT), *shlex.split(predict)[1:]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and "(version 1)" in done.stdout, done.stderr
        curl = next(ln.strip() for ln in lines if ln.strip().startswith("curl"))
        url = curl.split()[-1]
        assert url == f"http://127.0.0.1:{rest_port}/v1/models/galaxies:predict"
        image = shlex.split(predict)[2]
        body = json.dumps(
            {"instances": [{"b64": base64.b64encode(open(image, "rb").read()).decode()}]}
        )
        with urllib.request.urlopen(
            urllib.request.Request(url, body.encode()), timeout=60
        ) as reply:
            answer = json.loads(reply.read())
        assert len(answer["predictions"][0]["probabilities"]) == 4
        assert processes_mentioning(str(workdir))  # the server is up while the demo waits
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    assert demo.returncode == 0
    assert wait_until_gone(str(workdir), timeout=10) == []
    assert "the server is down" in demo.stdout.read()
