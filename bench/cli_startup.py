"""How long `zoo list` takes against `python -c "import tensorflow"`, as a ratio.

The target (issue 2): `zoo list` well under a quarter of TensorFlow's import time.
Run: python bench/cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_seconds(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    zoo = str(Path(sys.executable).with_name("zoo"))
    commands = {
        "zoo list": [zoo, "list"],
        "zoo info resnet50": [zoo, "info", "resnet50"],
        "zoo --help": [zoo, "--help"],
        "import tensorflow": [sys.executable, "-c", "import tensorflow"],
    }
    timings = {name: median_seconds(cmd, args.repeat) for name, cmd in commands.items()}
    baseline = timings["import tensorflow"]
    print(f"median of {args.repeat} runs each")
    for name, seconds in timings.items():
        print(f"{name:20s} {seconds:7.3f} s   {seconds / baseline:6.3f} x import tensorflow")


if __name__ == "__main__":
    main()
